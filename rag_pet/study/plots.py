"""A study's plots: accuracy against the compute to be ready to answer (training plus building the index; Pareto
front marked) and against answer latency, the freshness bars and the data-needs curves; error bars are the report's
95 % intervals."""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: studies run on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from rag_pet.storage import write_bytes_atomic  # noqa: E402

ACCURACY_KEY, ACCURACY_LABEL = "f1", "F1 on unseen-article questions"
COST_KEY, COST_LABEL = "ready_flops", "FLOPs to be ready: training + index build (0: neither)"
CURVE_PANELS = (  # key, y label, title
    (ACCURACY_KEY, ACCURACY_LABEL, "Data needs: F1"),
    ("answer_nll", "answer NLL on unseen-article questions", "Data needs: answer NLL (lower is better)"),
)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats: none costs less (x) and scores at least as high (y), or costs
    as little and scores higher. Sorted by cost."""
    front = [
        i
        for i, (cost, score) in enumerate(points)
        if not any((c <= cost and s >= score) and (c < cost or s > score) for j, (c, s) in enumerate(points) if j != i)
    ]
    return sorted(front, key=lambda i: points[i][0])


def _scatter(summaries: list[dict], x_key: str, x_label: str, title: str, front: bool, symlog: bool) -> bytes:
    usable = [s for s in summaries if s.get(ACCURACY_KEY) is not None and s.get(x_key) is not None]
    figure, axes = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    points = [(s[x_key], s[ACCURACY_KEY]) for s in usable]
    for summary, (x, y) in zip(usable, points, strict=True):
        yerr, xerr = _interval_bar(summary, ACCURACY_KEY, y), _interval_bar(summary, x_key, x)
        axes.errorbar(x, y, yerr=yerr, xerr=xerr, fmt="o", capsize=3)
        axes.annotate(summary["method"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if front and points:
        ordered = [points[i] for i in pareto_front(points)]
        axes.plot([x for x, _ in ordered], [y for _, y in ordered], "--", color="grey", label="Pareto front")
        axes.legend(loc="lower right", fontsize=8)
    if symlog:
        axes.set_xscale("symlog", linthresh=_linear_threshold([x for x, _ in points]))
    axes.set_xlabel(x_label)
    axes.set_ylabel(ACCURACY_LABEL)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = _png(figure)
    plt.close(figure)
    return buffer


def _interval_bar(row: dict, key: str, value: float) -> list[list[float]] | None:
    """matplotlib's asymmetric error bar from the row's interval (`<key>_low`, `<key>_high`), if it has one."""
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None or not math.isfinite(low) or not math.isfinite(high):
        return None
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]


def _linear_threshold(values: list[float]) -> float:
    """Where a symlog axis turns logarithmic: the smallest positive value (zero-cost methods sit at 0)."""
    positive = [v for v in values if v > 0]
    return min(positive) if positive else 1.0


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _freshness_bars(fresh: list[dict]) -> bytes:
    """F1 on the late articles' questions before and after, one pair of bars per method and way of taking them in."""
    figure, axes = plt.subplots(figsize=(max(6.4, 1.1 * len(fresh)), 4.4), dpi=120)
    positions = range(len(fresh))
    width = 0.38
    for when, shift in (("before", -width / 2), ("after", width / 2)):
        heights = [r[f"f1_{when}"] or 0.0 for r in fresh]
        bars = [_interval_bar(r, f"f1_{when}", h) or [[0.0], [0.0]] for r, h in zip(fresh, heights, strict=True)]
        errors = [[bar[0][0] for bar in bars], [bar[1][0] for bar in bars]]
        axes.bar([p + shift for p in positions], heights, width, yerr=errors, capsize=3, label=when)
    labels = [f"{r['method']}\n{r['kind'].replace('fresh_', '')}" for r in fresh]
    axes.set_xticks(list(positions), labels, fontsize=8)
    axes.set_ylabel("F1 on the new articles' questions")
    axes.set_title("Knowledge freshness: before and after the new articles arrive")
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    buffer = _png(figure)
    plt.close(figure)
    return buffer


def _data_needs(curves: list[dict]) -> bytes:
    """F1 and answer NLL on the unseen split against the training questions (log x), one line per method (dashed:
    a method that does not train), error bars the intervals."""
    figure, panels = plt.subplots(1, 2, figsize=(11, 4.4), dpi=120)
    sizes = sorted({row["size"] for row in curves})
    for axes, (key, label, title) in zip(panels, CURVE_PANELS, strict=True):
        for method in dict.fromkeys(row["method"] for row in curves):
            points = [r for r in curves if r["method"] == method and r.get(key) is not None]
            if not points:
                continue
            bars = [_interval_bar(r, key, r[key]) or [[0.0], [0.0]] for r in points]
            axes.errorbar(
                [r["size"] for r in points],
                [r[key] for r in points],
                yerr=[[bar[0][0] for bar in bars], [bar[1][0] for bar in bars]],
                fmt="o-" if points[0]["trains"] else "o--",
                capsize=3,
                label=method,
            )
        axes.set_xscale("log")
        axes.set_xticks(sizes, [str(size) for size in sizes], minor=False)
        axes.minorticks_off()
        axes.set_xlabel("training questions")
        axes.set_ylabel(label)
        axes.set_title(title)
        axes.grid(alpha=0.3)
    panels[0].legend(fontsize=8)
    figure.tight_layout()
    buffer = _png(figure)
    plt.close(figure)
    return buffer


def write_plots(
    summaries: list[dict], fresh: list[dict], study_dir: Path, curves: list[dict] | None = None
) -> list[Path]:
    """accuracy_vs_cost.png (FLOPs to be ready: training plus index, Pareto front), accuracy_vs_latency.png, (with
    a freshness test) freshness.png and (with `study.budgets`: `curves.data_needs`) data_needs.png; the files
    written."""
    plots = {
        "accuracy_vs_cost.png": _scatter(
            summaries, COST_KEY, COST_LABEL, "Accuracy vs compute to be ready", True, True
        ),
        "accuracy_vs_latency.png": _scatter(
            summaries, "batch1_latency_p50_ms", "answer latency p50 at batch 1 (ms)", "Accuracy vs latency", True, False
        ),
    }
    if fresh:
        plots["freshness.png"] = _freshness_bars(fresh)
    if curves:
        plots["data_needs.png"] = _data_needs(curves)
    written = []
    for name, data in plots.items():
        written.append(write_bytes_atomic(study_dir / name, data))
    return written
