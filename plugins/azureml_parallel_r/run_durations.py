"""How long a run's files took: what validation reports of the durations its result rows carry (percentiles, a
histogram on one log-spaced grid for every run, the slowest files) and of the run's throughput."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from azureml_parallel_r.models import RunState

SLOWEST = 20
BINS_PER_DECADE = 5  # the duration histogram's log-spaced bins: 10 ** (k / 5) seconds, the same grid for every run


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` of ``ordered`` (sorted), nearest rank."""
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def duration_histogram(seconds: Sequence[float]) -> dict[str, list[float] | list[int]]:
    """Per-file durations in a compact form: counts over log-spaced bins (``BINS_PER_DECADE`` per decade, edges
    ``10 ** (k / BINS_PER_DECADE)`` seconds, the same grid for every run), from the shortest duration's bin to the
    longest's; durations of 0 count in the first bin.

    :param seconds: the files' durations.
    """
    if not seconds:
        return {"edges_seconds": [], "counts": []}
    shortest = min((value for value in seconds if value > 0), default=1e-3)
    longest = max(max(seconds), shortest)
    low = math.floor(math.log10(shortest) * BINS_PER_DECADE)
    high = max(low + 1, math.floor(math.log10(longest) * BINS_PER_DECADE) + 1)
    counts = [0] * (high - low)
    for value in seconds:
        index = math.floor(math.log10(value) * BINS_PER_DECADE) - low if value > 0 else 0
        counts[min(max(index, 0), len(counts) - 1)] += 1
    edges = [float(f"{10 ** (k / BINS_PER_DECADE):.4g}") for k in range(low, high + 1)]
    return {"edges_seconds": edges, "counts": counts}


def durations(seconds: Iterable[float], slowest: Iterable[tuple[float, str]]) -> dict[str, Any]:
    """The report's ``durations``: count, total, mean, percentiles, histogram and the slowest files.

    :param seconds: every succeeded file's duration.
    :param slowest: (seconds, relative path) of the slowest files, at most ``SLOWEST``.
    """
    ordered = sorted(seconds)

    def rounded(fraction: float) -> float | None:
        return round(_percentile(ordered, fraction), 4) if ordered else None

    return {
        "files": len(ordered),
        "total_seconds": round(sum(ordered), 3),
        "mean_seconds": round(statistics.fmean(ordered), 4) if ordered else None,
        "p50_seconds": rounded(0.5),
        "p95_seconds": rounded(0.95),
        "max_seconds": round(ordered[-1], 4) if ordered else None,
        "p90_seconds": rounded(0.9),
        "p99_seconds": rounded(0.99),
        "histogram": duration_histogram(ordered),
        "slowest": [
            {"relative_path": path, "seconds": round(value, 4)} for value, path in sorted(slowest, reverse=True)
        ],
    }


def throughput(state: RunState, succeeded: int) -> dict[str, float | None]:
    """The report's ``throughput``: the run's wall time and succeeded files per second.

    :param state: the run's state (its start and end).
    :param succeeded: its succeeded files.
    """
    wall = (state.ended_at - state.started_at) if state.started_at and state.ended_at else None
    return {
        "wall_seconds": round(wall, 3) if wall else None,
        "files_per_second": round(succeeded / wall, 2) if wall else None,
    }
