"""``GET /v1/responses/{id}/input_items`` and ``DELETE /v1/responses/{id}`` on the
scripted backend, over real sockets: with httpx2 for the wire, and with openai-python's
own resources (through the drop-in) for its types and its pagination."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

import deltastream
from deltastream.server import create_app, run_in_thread

CALL = {"type": "function_call", "call_id": "call_7", "name": "get_weather", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "call_7", "output": "22 C"}


@pytest.fixture
def slow_url() -> Iterator[str]:
    """A scripted server that takes 20 ms per event, so a response is still running."""
    with run_in_thread(create_app(tokens_per_second=50)) as base:
        yield base


def _create(http: httpx2.Client, url: str, **body: Any) -> dict[str, Any]:
    request = {"model": "gpt-4o", "max_output_tokens": 16, **body}
    response = http.post(f"{url}/responses", json=request)
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


def _items(http: httpx2.Client, url: str, response_id: str, **query: Any) -> dict[str, Any]:
    response = http.get(f"{url}/responses/{response_id}/input_items", params=query)
    assert response.status_code == 200, response.text
    listed: dict[str, Any] = response.json()
    return listed


def test_a_string_input_is_one_user_message(http: httpx2.Client, server_url: str) -> None:
    created = _create(http, server_url, input="Hello there")
    listed = _items(http, server_url, created["id"])
    assert listed["object"] == "list"
    assert listed["has_more"] is False
    (item,) = listed["data"]
    assert item["id"].startswith("msg_")
    assert (listed["first_id"], listed["last_id"]) == (item["id"], item["id"])
    assert {k: v for k, v in item.items() if k != "id"} == {
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "Hello there"}],
    }


def test_every_kind_of_item_in_order_newest_first(http: httpx2.Client, server_url: str) -> None:
    given = [
        {"role": "system", "content": "Be brief."},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Weather?"}],
            "id": "msg_mine",
        },
        CALL,
        OUTPUT,
        {"role": "assistant", "content": "It is 22 C."},
        {"type": "reasoning", "id": "rs_given", "summary": []},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        {"role": "user", "content": "Thanks"},
    ]
    created = _create(http, server_url, input=given)
    newest_first = _items(http, server_url, created["id"])["data"]
    oldest_first = _items(http, server_url, created["id"], order="asc")["data"]
    assert oldest_first == newest_first[::-1]
    kinds = [(item["type"], item.get("role")) for item in oldest_first]
    assert kinds == [
        ("message", "system"),
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
        ("reasoning", None),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert oldest_first[1]["id"] == "msg_mine"  # an id sent with an item is kept
    assert oldest_first[2]["call_id"] == "call_7"
    assert oldest_first[2]["name"] == "get_weather"
    assert oldest_first[3]["output"] == "22 C"
    assert oldest_first[4]["content"] == [
        {"type": "output_text", "text": "It is 22 C.", "annotations": []}
    ]
    assert oldest_first[5] == {"id": "rs_given", "type": "reasoning", "summary": []}
    assert oldest_first[6]["content"] == [{"type": "refusal", "refusal": "No."}]
    assert len({item["id"] for item in oldest_first}) == 8


def test_a_continued_response_lists_the_earlier_turns_too(
    http: httpx2.Client, server_url: str
) -> None:
    first = _create(http, server_url, input="One")
    second = _create(http, server_url, input="Two", previous_response_id=first["id"])
    listed = _items(http, server_url, second["id"], order="asc")["data"]
    assert [item["role"] for item in listed] == ["user", "assistant", "user"]
    assert listed[1] == {**first["output"][0]}  # the earlier answer, as it was given
    assert listed[2]["content"][0]["text"] == "Two"


def test_pages_follow_the_cursors(http: httpx2.Client, server_url: str) -> None:
    given = [{"role": "user", "content": f"m{n}"} for n in range(7)]
    response_id = _create(http, server_url, input=given)["id"]
    everything = _items(http, server_url, response_id, order="asc")["data"]
    texts = [item["content"][0]["text"] for item in everything]
    assert texts == [f"m{n}" for n in range(7)]

    first = _items(http, server_url, response_id, order="asc", limit=3)
    assert [i["id"] for i in first["data"]] == [i["id"] for i in everything[:3]]
    assert first["has_more"] is True
    second = _items(http, server_url, response_id, order="asc", limit=3, after=first["last_id"])
    assert [i["id"] for i in second["data"]] == [i["id"] for i in everything[3:6]]
    last = _items(http, server_url, response_id, order="asc", limit=3, after=second["last_id"])
    assert [i["id"] for i in last["data"]] == [everything[6]["id"]]
    assert last["has_more"] is False

    back = _items(http, server_url, response_id, order="asc", limit=2, before=everything[5]["id"])
    assert [i["id"] for i in back["data"]] == [i["id"] for i in everything[3:5]]
    assert back["has_more"] is True


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ({"limit": 0}, "limit", "integer_below_min_value"),
        ({"limit": 101}, "limit", "integer_above_max_value"),
        ({"limit": "many"}, "limit", "invalid_type"),
        ({"limit": "1_0"}, "limit", "invalid_type"),
        ({"limit": "\u0663"}, "limit", "invalid_type"),  # an Arabic-Indic 3
        ({"limit": -1}, "limit", "integer_below_min_value"),
        ({"order": "sideways"}, "order", "invalid_value"),
    ],
)
def test_bad_list_parameters_are_400s(
    http: httpx2.Client, server_url: str, query: dict[str, Any], param: str, code: str
) -> None:
    response_id = _create(http, server_url, input="Hi")["id"]
    response = http.get(f"{server_url}/responses/{response_id}/input_items", params=query)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


def test_an_item_sent_twice_is_refused(http: httpx2.Client, server_url: str) -> None:
    first = _create(http, server_url, input="One")
    again = [*first["output"], {"role": "user", "content": "Two"}]  # beside its id: twice
    response = http.post(
        f"{server_url}/responses",
        json={"model": "gpt-4o", "input": again, "previous_response_id": first["id"]},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    duplicate = first["output"][0]["id"]
    assert error["message"].startswith(f"Duplicate item found with id {duplicate}.")
    assert error["param"] == "input"
    mine = {"role": "user", "content": "Hi", "id": "msg_same"}
    response = http.post(f"{server_url}/responses", json={"model": "m", "input": [mine, mine]})
    assert response.status_code == 400, response.text
    _create(http, server_url, input=again[:1])  # the same item once is fine


def test_unknown_response_or_cursor_is_a_404(http: httpx2.Client, server_url: str) -> None:
    response = http.get(f"{server_url}/responses/resp_nope/input_items")
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "response_id"
    response_id = _create(http, server_url, input="Hi")["id"]
    response = http.get(
        f"{server_url}/responses/{response_id}/input_items", params={"after": "msg_nope"}
    )
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "after"


def test_delete_forgets_the_response(http: httpx2.Client, server_url: str) -> None:
    response_id = _create(http, server_url, input="Hi")["id"]
    deleted = http.delete(f"{server_url}/responses/{response_id}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"id": response_id, "object": "response.deleted", "deleted": True}
    for path in ("", "/input_items"):
        gone = http.get(f"{server_url}/responses/{response_id}{path}")
        assert gone.status_code == 404, path
    again = http.delete(f"{server_url}/responses/{response_id}")
    assert again.status_code == 404
    assert again.json()["error"]["message"] == f"Response with id '{response_id}' not found."
    continued = http.post(
        f"{server_url}/responses",
        json={"model": "gpt-4o", "input": "More", "previous_response_id": response_id},
    )
    assert continued.status_code == 400
    assert continued.json()["error"]["code"] == "previous_response_not_found"


def test_deleting_a_running_response_ends_its_stream(slow_url: str) -> None:
    request = {"model": "gpt-4o", "input": "Hi", "stream": True, "max_output_tokens": 200}
    with (
        httpx2.Client(timeout=10.0) as http,
        http.stream("POST", f"{slow_url}/responses", json=request) as stream,
    ):
        events = []
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if len(events) == 3:  # created, in_progress, and one more
                    deleted = http.delete(f"{slow_url}/responses/{events[0]['response']['id']}")
                    assert deleted.status_code == 200, deleted.text
    assert len(events) < 50  # it did not run to its 200 tokens
    assert events[-1]["type"] == "error"
    assert events[-1]["code"] == "response_cancelled"
    assert events[-1]["message"] == "The response was deleted."


def test_openai_python_lists_and_deletes(server_url: str) -> None:
    client = deltastream.OpenAI(base_url=server_url, api_key="unused")
    given: Any = [{"role": "user", "content": f"m{n}"} for n in range(5)]
    created = client.responses.create(model="gpt-4o", input=given, max_output_tokens=16)
    pages = client.responses.input_items.list(created.id, limit=2, order="asc")
    items = list(pages)  # openai's paginator follows the cursors
    assert len(items) == 5
    texts = []
    for item in items:
        assert isinstance(item, openai.types.responses.ResponseInputMessageItem)
        part = item.content[0]
        assert isinstance(part, openai.types.responses.ResponseInputText)
        texts.append(part.text)
    assert texts == [f"m{n}" for n in range(5)]
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    client.close()
