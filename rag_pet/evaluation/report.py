"""The comparison table a job prints: one row per method."""

from __future__ import annotations

QA_COLUMNS = (
    ("method", "method", "{}"),
    ("EM", "exact_match", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("trainable params", "trainable_params", "{:,}"),
    ("train time (s)", "train_seconds", "{:.1f}"),
)
RETRIEVAL_COLUMNS = (
    ("method", "method", "{}"),
    ("nDCG@10", "ndcg@10", "{:.4f}"),
    ("MRR@10", "mrr@10", "{:.4f}"),
    ("R@1", "recall@1", "{:.4f}"),
    ("R@5", "recall@5", "{:.4f}"),
    ("R@20", "recall@20", "{:.4f}"),
    ("R@100", "recall@100", "{:.4f}"),
    ("queries", "queries", "{}"),
)


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of result rows, QA or retrieval columns by what the rows hold ('-' if missing)."""
    return format_columns(rows, RETRIEVAL_COLUMNS if rows and "ndcg@10" in rows[0] else QA_COLUMNS)


def format_columns(rows: list[dict], columns: tuple) -> str:
    """A fixed-width text table of `columns` ((title, key, format) each) of the rows ('-' where a key is missing)."""
    cells = [[title for title, _, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[key]) if row.get(key) is not None else "-" for _, key, fmt in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
