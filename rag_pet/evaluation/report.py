"""The comparison table a job prints: one row per method."""

from __future__ import annotations

COLUMNS = (
    ("method", "method", "{}"),
    ("EM", "exact_match", "{:.3f}"),
    ("F1", "f1", "{:.3f}"),
    ("trainable params", "trainable_params", "{:,}"),
    ("train time (s)", "train_seconds", "{:.1f}"),
)


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of result rows (missing values shown as '-')."""
    cells = [[title for title, _, _ in COLUMNS]]
    for row in rows:
        cells.append([fmt.format(row[key]) if row.get(key) is not None else "-" for _, key, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
