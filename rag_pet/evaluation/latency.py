"""Latency percentiles and throughput of a set of timed requests, and the parts of answers timed one at a time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

PERCENTILES = (50, 95, 99)
BATCH1_PERCENTILES = (50, 95)


def latency_summary(latencies_s: list[float], questions: int, wall_seconds: float) -> dict[str, float]:
    """p50/p95/p99 latency in milliseconds and questions per second over the wall time."""
    summary = {"throughput_qps": questions / wall_seconds if wall_seconds > 0 else 0.0}
    if latencies_s:
        values = np.percentile(np.asarray(latencies_s) * 1000.0, PERCENTILES)
        summary.update({f"latency_p{p}_ms": float(v) for p, v in zip(PERCENTILES, values, strict=True)})
    return summary


@dataclass(frozen=True)
class QuestionTiming:
    """One question answered alone, in seconds: the whole of it (retrieval included), its retrieval (None
    closed-book), time to the first new token and mean time of each decoding step after it (None where the answer
    was not timed step by step, or took fewer than 2 steps), and the steps decoded."""

    total_s: float
    retrieval_s: float | None = None
    first_token_s: float | None = None
    per_token_s: float | None = None
    tokens: int | None = None


def _percentiles_ms(name: str, seconds: list[float], suffix: str = "_ms") -> dict[str, float]:
    """p50/p95 in milliseconds, and the p50's distribution-free 95 % interval (`..._p50<suffix>_low`/`_high`: the
    order statistics of scipy's `quantile_test`)."""
    if not seconds:
        return {}
    milliseconds = np.asarray(seconds) * 1000.0
    values = np.percentile(milliseconds, BATCH1_PERCENTILES)
    found = {f"{name}_p{p}{suffix}": float(v) for p, v in zip(BATCH1_PERCENTILES, values, strict=True)}
    interval = stats.quantile_test(milliseconds, q=float(values[0]), p=0.5).confidence_interval(0.95)
    if np.isfinite(interval.low) and np.isfinite(interval.high):  # too few timings leave an end open
        found.update({f"{name}_p50{suffix}_low": float(interval.low), f"{name}_p50{suffix}_high": float(interval.high)})
    return found


def batch1_summary(timings: Sequence[QuestionTiming]) -> dict[str, float]:
    """p50/p95 of answers timed one at a time, each part apart: the whole answer (`batch1_latency_*`, as before),
    time to the first token (`batch1_ttft_*`), ms per decoded token after the first (`batch1_ms_per_token_*`, free
    of answer length), retrieval (`batch1_retrieval_*`, RAG only), and how many questions were timed."""
    parts = {
        "batch1_latency": [t.total_s for t in timings],
        "batch1_ttft": [t.first_token_s for t in timings if t.first_token_s is not None],
        "batch1_retrieval": [t.retrieval_s for t in timings if t.retrieval_s is not None],
    }
    summary: dict[str, float] = {"batch1_latency_questions": len(timings)}
    for name, seconds in parts.items():
        summary.update(_percentiles_ms(name, seconds))
    per_token = [t.per_token_s for t in timings if t.per_token_s is not None]
    summary.update(_percentiles_ms("batch1_ms_per_token", per_token, suffix=""))
    return summary
