"""A study's results: `results.csv` (one row per cell), `report.md` (per method, mean ± std over seeds), the plots,
and the study's W&B run. Every number comes from the per-cell JSON records."""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict
from pathlib import Path

from rag_pet.config import TrackingConfig
from rag_pet.evaluation.report import format_columns
from rag_pet.storage import write_text_atomic
from rag_pet.study.cells import MAIN
from rag_pet.study.freshness import freshness_markdown, freshness_rows
from rag_pet.study.plots import write_plots
from rag_pet.study.spec import StudyConfig

GIB = 1024**3

# (title, metric key, format); a key missing from a method's cells prints as "-"
ACCURACY_COLUMNS = (
    ("EM unseen", "exact_match", "{:.3f}"),
    ("F1 unseen", "f1", "{:.3f}"),
    ("EM seen", "exact_match@validation_seen", "{:.3f}"),
    ("F1 seen", "f1@validation_seen", "{:.3f}"),
    ("EM train sample", "exact_match@train", "{:.3f}"),
    ("overfit gap", "overfit_gap", "{:+.3f}"),
    ("gold in top 1 / 5", "retrieval_recall", "{}"),
    ("forgetting (Δ loss)", "forgetting", "{:+.3f}"),
)
COST_COLUMNS = (
    ("trainable params", "trainable_params", "{:,.0f}"),
    ("train wall s", "train_wall_seconds", "{:.0f}"),
    ("train tokens", "train_tokens", "{:,.0f}"),
    ("train FLOPs", "train_flops", "{:.2e}"),
    ("peak memory GiB", "peak_memory_gib", "{:.2f}"),
    ("latency p50 ms", "batch1_latency_p50_ms", "{:.0f}"),
    ("latency p95 ms", "batch1_latency_p95_ms", "{:.0f}"),
    ("endpoint p50 ms", "endpoint_latency_p50_ms", "{:.0f}"),
    ("endpoint p95 ms", "endpoint_latency_p95_ms", "{:.0f}"),
)


def cell_rows(records: list[dict]) -> list[dict]:
    """One flat row per cell: id, method, seed, status, error, then its metrics and the derived ones."""
    rows = []
    for record in records:
        metrics = dict(record.get("metrics") or {})
        if "exact_match@train" in metrics and "exact_match@validation_seen" in metrics:
            metrics["overfit_gap"] = metrics["exact_match@train"] - metrics["exact_match@validation_seen"]
        if metrics.get("peak_memory_bytes") is not None:
            metrics["peak_memory_gib"] = metrics["peak_memory_bytes"] / GIB
        if record["status"] == "done":  # a method that does not train spends nothing on it
            for key in ("train_wall_seconds", "train_tokens", "train_flops"):
                metrics.setdefault(key, 0.0)
        keys = ("id", "method", "kind", "seed", "index", "status", "error", "wall_seconds", "command")
        identity = {k: record.get(k) for k in keys}
        metrics["label"] = metrics.pop("method", None)  # the run's own name for its row ("zero-shot", "rag+lora")
        rows.append({**identity, **metrics})
    return rows


def method_summaries(rows: list[dict], methods: list[str]) -> list[dict]:
    """Per method (in study order): each numeric metric's mean and std over its finished main cells, and the
    count."""
    summaries = []
    for method in methods:
        mains = [row for row in rows if row["method"] == method and row["kind"] == MAIN]
        done = [row for row in mains if row["status"] == "done"]
        failed = [row for row in mains if row["status"] != "done"]
        summary: dict = {"method": method, "cells": len(done), "failed": len(failed)}
        keys = {key for row in done for key, value in row.items() if _is_number(value) and key != "seed"}
        for key in sorted(keys):
            values = [row[key] for row in done if _is_number(row.get(key))]
            summary[key] = statistics.fmean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        summaries.append(summary)
    return summaries


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(summary: dict, key: str, fmt: str) -> str:
    if key == "retrieval_recall":
        if "retrieval_recall@1" not in summary:
            return "-"
        return f"{summary['retrieval_recall@1']:.3f} / {summary['retrieval_recall@5']:.3f}"
    if summary.get(key) is None:
        return "-"
    text = fmt.format(summary[key])
    if summary["cells"] > 1 and summary.get(f"{key}_std"):
        text += " ± " + fmt.format(summary[f"{key}_std"]).lstrip("+")
    return text


def markdown_table(summaries: list[dict], columns: tuple) -> str:
    """A markdown table of the summaries, without the columns no method has a value for."""

    def filled(key: str) -> bool:
        key = "retrieval_recall@1" if key == "retrieval_recall" else key
        return any(summary.get(key) is not None for summary in summaries)

    columns = tuple(column for column in columns if filled(column[1]))
    header = ["method", *(title for title, _, _ in columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for summary in summaries:
        if not summary["cells"]:
            cells = ["failed"] + ["-"] * (len(columns) - 1)
        else:
            cells = [_cell(summary, key, fmt) for _, key, fmt in columns]
        lines.append(f"| {summary['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_csv(rows: list[dict]) -> str:
    """Every cell's row; columns are the union of the rows' keys, identity columns first."""
    first = ["id", "method", "kind", "seed", "status", "error", "wall_seconds"]
    rest = sorted({key for row in rows for key in row} - set(first) - {"command"})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*first, *rest, "command"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def report_markdown(
    study: StudyConfig,
    rows: list[dict],
    summaries: list[dict],
    shared: dict,
    plots: list[Path],
    environment: dict | None,
    fresh: list[dict],
) -> str:
    """report.md: what was compared and under which budget, the two tables, the shared indexes, failures, plots,
    the command that re-runs each cell alone, and the machine."""
    seeds = ", ".join(map(str, study.seeds))
    parts = [
        f"# Study `{study.name}`",
        "",
        f"Methods: {', '.join(study.methods)}. Budget per trained method: {study.budget.amount:g} "
        f"{study.budget.unit}, over the same {study.train_examples} training questions; seeds {seeds} (mean ± std "
        f"where a method has several). Evaluated on {study.questions} questions per split: *unseen* = articles no "
        "training question came from (`validation`), *seen* = held-out questions of the training articles "
        "(`validation_seen`), *train sample* = questions trained on (overfit gap = EM train sample − EM seen). "
        f"Forgetting: the generator's loss on {study.forgetting_texts} SciFact abstracts after training minus "
        f"before. Latency: one question at a time, {study.latency_questions} questions, in the evaluating process"
        + (" and through each model's Ray Serve endpoint over HTTP." if study.latency == "endpoint" else "."),
        "",
        "## Accuracy",
        "",
        markdown_table(summaries, ACCURACY_COLUMNS),
        "",
        "## Cost",
        "",
        markdown_table(summaries, COST_COLUMNS),
    ]
    if fresh:
        freshness = study.freshness
        parts += [
            "",
            "## Knowledge freshness",
            "",
            f"The test articles arrive after training: their paragraphs were not in the first index and no method "
            f"trained on them. Scored on {study.questions} of their questions, drawn from the "
            f"{1 - freshness.qa_fraction:.0%} that no method trains on (the other {freshness.qa_fraction:.0%} are "
            "the QA pairs closed-book methods may train on), before and after each method took them in. "
            f"Closed-book methods trained on from their trained weights for {freshness.budget.amount:g} "
            f"{freshness.budget.unit}; wall s is the whole run (Ray Train start included) or the index growth.",
            "",
            freshness_markdown(fresh),
        ]
    if shared:
        parts += ["", "## Shared indexes (built once for every retrieval method)", ""]
        parts += ["| index | version | vectors | size MiB | build s |", "| --- | --- | --- | --- | --- |"]
        for entry in shared.values():
            for version in (entry, entry.get("fresh")):
                if version is None:
                    continue
                built = f"{version['build_seconds']:.0f}" if version["build_seconds"] is not None else "built before"
                grown = f" (+{version['passages_added']} new passages)" if "passages_added" in version else ""
                parts.append(
                    f"| {version['index']}{grown} | {version['version']} | {version['num_vectors']:,} | "
                    f"{version['size_bytes'] / 2**20:.1f} | {built} |"
                )
    failed = [row for row in rows if row["status"] != "done"]
    if failed:
        parts += ["", "## Failed cells", ""]
        parts += [f"- `{row['id']}`: {row['error']}" for row in failed]
    if plots:
        parts += ["", "## Plots", ""]
        parts += [f"![{plot.stem}]({plot.name})" for plot in plots]
    parts += ["", "## Re-run one cell alone", ""]
    parts += [f"- `{row['id']}`: `{row['command']}`" for row in rows]
    if environment is not None:
        packages = ", ".join(f"{name} {version}" for name, version in environment["packages"].items())
        device = environment["gpu"] or f"{environment['cpus']} CPUs, no GPU"
        parts += ["", f"Measured on {device} ({environment['platform']}, Python {environment['python']}; {packages})."]
    return "\n".join(parts) + "\n"


def write_report(
    study: StudyConfig, study_dir: Path, records: list[dict], shared: dict, tracking: TrackingConfig
) -> dict:
    """Write results.csv, report.md and the plots into `study_dir`, log them to the study's W&B run; the summary."""
    rows = cell_rows(records)
    summaries = method_summaries(rows, study.methods)
    fresh = freshness_rows(rows, study.methods, shared) if study.freshness.enabled else []
    plots = write_plots(summaries, fresh, study_dir)
    write_text_atomic(study_dir / "results.csv", results_csv(rows))
    environment = next((r["environment"] for r in records if r["status"] == "done"), None)
    markdown = report_markdown(study, rows, summaries, shared, plots, environment, fresh)
    write_text_atomic(study_dir / "report.md", markdown)
    _log_to_wandb(study, study_dir, {"cells": rows, "methods": summaries, "freshness": fresh}, plots, tracking)
    return {
        "study": study.name,
        "study_dir": str(study_dir),
        "rows": summaries,
        "freshness": fresh,
        "failed": [row["id"] for row in rows if row["status"] != "done"],
        "report": str(study_dir / "report.md"),
    }


def _log_to_wandb(
    study: StudyConfig, study_dir: Path, tables: dict[str, list[dict]], plots: list[Path], tracking: TrackingConfig
) -> None:
    """The study's own W&B run (grouped with its cells): the per-cell, per-method and freshness tables and the
    plots."""
    import wandb

    from rag_pet.tracking import start_run

    settings = TrackingConfig(**{**asdict(tracking), "group": tracking.group or study.name})
    run = start_run(settings, study_dir, f"{study.name}.report", {"study": asdict(study)}, job_type="study")
    try:
        for name, table_rows in tables.items():
            columns = sorted({key for row in table_rows for key in row})
            data = [[_loggable(row.get(column)) for column in columns] for row in table_rows]
            run.log({name: wandb.Table(columns=columns, data=data)})
        run.log({plot.stem: wandb.Image(str(plot)) for plot in plots})
    finally:
        run.finish()


def _loggable(value):
    return value if value is None or isinstance(value, (int, float, str, bool)) else str(value)


SUMMARY_COLUMNS = (
    ("method", "method", "{}"),
    ("EM unseen", "exact_match", "{:.3f}"),
    ("F1 unseen", "f1", "{:.3f}"),
    ("EM seen", "exact_match@validation_seen", "{:.3f}"),
    ("F1 seen", "f1@validation_seen", "{:.3f}"),
    ("train s", "train_wall_seconds", "{:.0f}"),
    ("FLOPs", "train_flops", "{:.1e}"),
    ("p50 ms", "batch1_latency_p50_ms", "{:.0f}"),
)


def format_study_summary(summary: dict) -> str:
    """What `jobs.compare` prints: the main numbers per method, the failed cells, and where the report is."""
    out = f"\nstudy {summary['study']}:\n" + format_columns(summary["rows"], SUMMARY_COLUMNS)
    if summary["failed"]:
        out += f"\nfailed cells (see the report): {', '.join(summary['failed'])}"
    return out + f"\nreport: {summary['report']}"
