"""docs/benchmarks.png: CPU µs per chunk by client, both sequential workloads, log scale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot"]

_COLORS = {
    "deltastream drop-in": "#8bb8ee",
    "deltastream": "#2a7de1",
    "openai-python": "#d9822b",
    "httpx2": "#6c757d",
}


def _color(client: str) -> str:
    for prefix, color in _COLORS.items():
        if client.startswith(prefix):
            return color
    return "#3c9d5d"  # the raw floor


def plot(results: dict[str, Any], clients: list[str], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = [("big", "one stream of 100,000 chunks"), ("many", "1,000 streams of 100 chunks")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), sharey=True)
    for ax, (section, label) in zip(axes, workloads, strict=True):
        names = [c for c in clients if results.get(section, {}).get(c, {}).get("median")]
        values = [results[section][c]["median"]["us_per_chunk"] for c in names]
        bars = ax.barh(names, values, color=[_color(c) for c in names])
        ax.set_xscale("log")
        ax.set_title(label, fontsize=11)
        ax.set_xlabel("client CPU µs per chunk (log scale, lower is better)")
        ax.grid(axis="x", which="both", alpha=0.25)
        for bar, value in zip(bars, values, strict=True):
            ax.text(
                value * 1.05,
                bar.get_y() + bar.get_height() / 2,
                f"{value:.1f}",
                va="center",
                fontsize=9,
            )
        ax.set_xlim(left=1, right=max(values) * 3 if values else 10)
    axes[0].invert_yaxis()  # the axes share y: inverting one inverts both
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
