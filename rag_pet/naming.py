"""One way to turn a free-form name (a method label, a factory string, an experiment name) into a name that a
folder, a W&B artifact, a study cell or a peft adapter accepts."""

from __future__ import annotations

import re


def safe_name(text: str, keep: str = "", fill: str = "_", empty: str = "unnamed") -> str:
    """`text` with every run of characters other than letters, digits, `_` and those in `keep` made one `fill`,
    and `fill` stripped from both ends; `empty` when nothing is left. `"rag+lora"` -> `"rag_lora"`."""
    allowed = re.escape("_" + keep)
    cleaned = re.sub(f"[^A-Za-z0-9{allowed}]+", fill, text).strip(fill)
    return cleaned or empty
