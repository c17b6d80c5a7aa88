"""Latency percentiles and throughput of a set of timed requests."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 95, 99)


def latency_summary(latencies_s: list[float], questions: int, wall_seconds: float) -> dict[str, float]:
    """p50/p95/p99 latency in milliseconds and questions per second over the wall time."""
    summary = {"throughput_qps": questions / wall_seconds if wall_seconds > 0 else 0.0}
    if latencies_s:
        values = np.percentile(np.asarray(latencies_s) * 1000.0, PERCENTILES)
        summary.update({f"latency_p{p}_ms": float(v) for p, v in zip(PERCENTILES, values, strict=True)})
    return summary
