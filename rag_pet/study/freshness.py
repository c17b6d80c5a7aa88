"""The freshness result: each method's score on the late articles' questions before and after it took them in,
and what taking them in cost."""

from __future__ import annotations

import statistics

from rag_pet.study.names import FRESH_INDEX, FRESH_TRAINING, MAIN
from rag_pet.study.spec import method_named

UPDATES = {
    FRESH_INDEX: "new passages added to the index",
    FRESH_TRAINING["text"]: "trained on the articles' text",
    FRESH_TRAINING["qa"]: "trained on QA pairs about them",
    "none": "nothing (no weights train)",
}


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.fmean(values) if values else None


def freshness_rows(rows: list[dict], methods: list[str], shared: dict) -> list[dict]:
    """Per method and way of taking the late articles in: EM/F1 on their questions before and after, and the
    wall seconds and FLOPs it took (the index growth's, for RAG; the further training's, closed-book)."""
    result = []
    for method in methods:
        mains = [r for r in rows if r["method"] == method and r["kind"] == MAIN and r["status"] == "done"]
        before = {"em_before": _mean(mains, "exact_match@test"), "f1_before": _mean(mains, "f1@test")}
        spec = method_named(method)
        present = {r["kind"] for r in rows if r["method"] == method}
        kinds = [FRESH_INDEX] if spec.retrieves else [k for k in FRESH_TRAINING.values() if k in present]
        for kind in kinds or ["none"]:
            row = {"method": method, "update": UPDATES[kind], "kind": kind, **before}
            if kind == "none":
                row.update(em_after=before["em_before"], f1_after=before["f1_before"], seconds=0.0, flops=0.0)
            else:
                done = [r for r in rows if r["method"] == method and r["kind"] == kind and r["status"] == "done"]
                row.update(em_after=_mean(done, "exact_match"), f1_after=_mean(done, "f1"), cells=len(done))
                if kind == FRESH_INDEX:
                    key = next((r["index"] for r in mains if r.get("index")), None)
                    grown = shared.get(key, {}).get("fresh", {})
                    row.update(seconds=grown.get("build_seconds"), flops=grown.get("encode_flops"))
                    if grown and grown.get("build_seconds") is None:
                        row["seconds_note"] = "built before"
                else:
                    row.update(seconds=_mean(done, "train_wall_seconds"), flops=_mean(done, "train_flops"))
            result.append(row)
    return result


def _pair(em: float | None, f1: float | None) -> str:
    return "failed" if em is None or f1 is None else f"{em:.3f} / {f1:.3f}"


def freshness_markdown(fresh: list[dict]) -> str:
    """The freshness table of report.md."""
    lines = [
        "| method | took the new articles in by | EM / F1 before | EM / F1 after | wall s | FLOPs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in fresh:
        seconds = f"{row['seconds']:.0f}" if row.get("seconds") is not None else row.get("seconds_note", "-")
        flops = f"{row['flops']:.2e}" if row.get("flops") is not None else "-"
        lines.append(
            f"| {row['method']} | {row['update']} | {_pair(row['em_before'], row['f1_before'])} | "
            f"{_pair(row['em_after'], row['f1_after'])} | {seconds} | {flops} |"
        )
    return "\n".join(lines)
