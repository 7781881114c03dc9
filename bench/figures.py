"""Reading figures out of a run's results and setting them in Markdown tables.

``results`` is ``latest.json``'s ``"results"``: section name -> results key (a client,
with its variant) -> ``{"runs": [one dict per run], "median": {...}}``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DASH",
    "RANGE",
    "TIMES",
    "Spread",
    "fmt",
    "median",
    "per_run",
    "ratio",
    "runs",
    "table",
]

DASH = "\u2013"  # en dash: no figure
TIMES = "\u00d7"  # multiplication sign, for ratios
RANGE = "\u2013"  # en dash between the lowest and highest of several figures


def median(results: dict[str, Any], section: str, client: str) -> dict[str, Any]:
    """The medians of one job's runs (empty if it never ran or always failed)."""
    found: dict[str, Any] = results.get(section, {}).get(client, {}).get("median", {})
    return found


def runs(results: dict[str, Any], section: str, client: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = results.get(section, {}).get(client, {}).get("runs", [])
    return found


def per_run(results: dict[str, Any], section: str, client: str, key: str) -> list[float]:
    """One figure from each run that has it."""
    return [run[key] for run in runs(results, section, client) if key in run]


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def ratio(value: float | None, base: float | None) -> str:
    if not value or not base:
        return DASH
    return f"{value / base:.2f}{TIMES}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Spread:
    """Several measurements of one figure: their median, lowest and highest."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Spread | None:
        return cls(tuple(values)) if values else None

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def middle(self) -> tuple[float, float]:
        """The quartiles: the middle half of the measurements lies between them."""
        if len(self.values) < 2:
            return self.values[0], self.values[0]
        q1, _, q3 = statistics.quantiles(self.values, n=4)
        return q1, q3

    def beyond(self, limit: float, below: bool) -> int:
        """How many measurements miss a target of at most (``below``) or at least
        ``limit``."""
        return sum(1 for v in self.values if (v > limit if below else v < limit))

    def show(self, digits: int = 2, unit: str = "") -> str:
        """``median (lowest, highest)`` with an en dash between the two."""
        return (
            f"{self.median:.{digits}f}{unit} ({self.low:.{digits}f} {RANGE} {self.high:.{digits}f})"
        )
