"""NQ-open question/answer lists (no passages), for closed-book QA."""

from __future__ import annotations

from rag_pet.data.jsonl import read_qa_jsonl
from rag_pet.data.resources import NQ_OPEN_DIR
from rag_pet.data.types import QAExample

# NQ-open's train file is not bundled, so the original dev set trains and EfficientQA's dev/test evaluate.
NQ_OPEN_FILES = {
    "train": "NQ-open.dev.jsonl",
    "validation": "NQ-open.efficientqa.dev.1.1.jsonl",
    "test": "NQ-open.efficientqa.test.1.1.jsonl",
}


def load_nq_open(split: str) -> list[QAExample]:
    """The bundled NQ-open questions of `split` (train, validation or test)."""
    if split not in NQ_OPEN_FILES:
        raise ValueError(f"NQ-open has splits {sorted(NQ_OPEN_FILES)}, not {split!r}")
    examples = read_qa_jsonl(NQ_OPEN_DIR / NQ_OPEN_FILES[split])
    return [QAExample(f"nq-{split}-{i}", ex.question, ex.answers) for i, ex in enumerate(examples)]
