"""Hybrid retrieval by reciprocal-rank fusion (Cormack et al., 2009)."""

from __future__ import annotations

from collections import defaultdict


def reciprocal_rank_fusion(
    rankings: list[list[tuple[str, float]]], k: int, constant: int = 60
) -> list[tuple[str, float]]:
    """Fuse several best-first rankings of one query: score(d) = sum over rankings of 1 / (constant + rank(d))."""
    fused: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, (doc_id, _) in enumerate(ranking, start=1):
            fused[doc_id] += 1.0 / (constant + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))[:k]
