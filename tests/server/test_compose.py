"""The scripted backend's text and tool arguments (pure functions)."""

from __future__ import annotations

import pytest

from deltastream.server.backends._compose import compose_reply, split_tokens, topic_of
from deltastream.server.backends._schema import example_arguments


def test_story_about_a_robot() -> None:
    story = compose_reply("Write a story about a robot.")
    assert story.startswith("Once upon a time")
    assert "a robot named" in story
    assert "the robot" in story
    assert 300 < len(story) < 1000


def test_story_about_an_idea() -> None:
    story = compose_reply("Tell me a short story about friendship")
    assert "friendship" in story


@pytest.mark.parametrize(
    ("prompt", "reply"),
    [
        ("Count to 5", "1, 2, 3, 4, 5."),
        ("count from 3 to 1", "3, 2, 1."),
        ("Please count to 1", "1."),
    ],
)
def test_counting(prompt: str, reply: str) -> None:
    assert compose_reply(prompt) == reply


def test_counting_is_bounded() -> None:
    reply = compose_reply("Count to 1000000")
    assert reply.endswith("999, 1000, and so on.")


def test_greeting() -> None:
    assert compose_reply("Hello!").startswith("Hello!")
    assert compose_reply("Hello!", 1) != compose_reply("Hello!", 0)


@pytest.mark.parametrize(
    ("prompt", "needle"),
    [
        ("Explain Python", "Python"),
        ("What is quantum computing?", "quantum computing"),
        ("Tell me a joke", "?"),
        ("Write a haiku about coding", "coding"),
        ("Best pizza toppings in Naples", "Best pizza toppings in Naples"),
    ],
)
def test_other_prompts_mention_the_topic(prompt: str, needle: str) -> None:
    assert needle in compose_reply(prompt)


def test_same_prompt_same_reply() -> None:
    assert compose_reply("Explain Python", 7) == compose_reply("Explain Python", 7)


@pytest.mark.parametrize(
    ("prompt", "topic"),
    [
        ("Explain Python!", "Python"),
        ("Can you tell me about the Moon?", "the Moon"),
        ("  ", "that"),
    ],
)
def test_topic_of(prompt: str, topic: str) -> None:
    assert topic_of(prompt) == topic


def test_tokens_are_words_with_leading_space() -> None:
    assert split_tokens("I'm unable, café 👋!") == ["I", "'", "m", " unable", ",", " café", " 👋!"]
    assert "".join(split_tokens("a  b\n\nc ")) == "a  b\n\nc "


WEATHER = {
    "type": "object",
    "properties": {
        "location": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["location"],
}


def test_weather_arguments_come_from_the_prompt() -> None:
    arguments = example_arguments(WEATHER, "What's the weather in Tokyo?")
    assert arguments == {"location": "Tokyo", "unit": "celsius"}
    arguments = example_arguments(WEATHER, "Is it raining in San Francisco today?")
    assert arguments["location"] == "San Francisco"


def test_arguments_by_type_and_nesting() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": 3},
            "ratio": {"type": "number"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "when": {"type": "string", "format": "date"},
            "query": {"type": "string"},
            "inner": {"type": "object", "properties": {"ok": {"type": ["boolean", "null"]}}},
            "choice": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
            "fixed": {"const": "x"},
            "ref": {"$ref": "#/$defs/Point"},
        },
        "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "number"}}}},
    }
    assert example_arguments(schema, "find cats") == {
        "count": 3,
        "ratio": 1,
        "flag": True,
        "tags": ["a"],
        "when": "2024-01-01",
        "query": "find cats",
        "inner": {"ok": True},
        "choice": 1,
        "fixed": "x",
        "ref": {"x": 1},
    }


def test_recursive_schema_terminates() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {"child": {"anyOf": [{"$ref": "#/$defs/Node"}]}},
            }
        },
        "$ref": "#/$defs/Node",
    }
    arguments = example_arguments(schema, "x")
    depth = 0
    node: object = arguments
    while isinstance(node, dict) and node:
        node = node["child"]
        depth += 1
    assert 1 < depth < 20
