"""Prompt templates and the tokenising collators that turn QA examples into model inputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from rag_pet.data.types import QAExample

IGNORE_INDEX = -100

# `rag` is reserved for retrieval-augmented inputs (passages are formatted in before the question).
TEMPLATES = {
    "closed_book": "Answer the question with a short phrase.\nQuestion: {question}\nAnswer:",
}


def render_prompt(template: str, example: QAExample) -> str:
    """The prompt text of `example` under the named template."""
    return TEMPLATES[template].format(question=example.question)


@dataclass
class PromptEncoder:
    """Tokenises prompts and answers the same way for training and for generation."""

    tokenizer: PreTrainedTokenizerBase
    template: str
    is_seq2seq: bool
    max_prompt_tokens: int
    max_answer_tokens: int

    def __post_init__(self) -> None:
        bos = self.tokenizer.bos_token_id
        probe = self.tokenizer("a").input_ids
        self._bos = [bos] if bos is not None and probe and probe[0] == bos and not self.is_seq2seq else []

    def prompt_ids(self, example: QAExample) -> list[int]:
        """Prompt tokens, keeping the end (where the template asks for the answer) when too long."""
        ids = self.tokenizer(render_prompt(self.template, example), add_special_tokens=False).input_ids
        ids = ids[-self.max_prompt_tokens :]
        if self.is_seq2seq:
            return ids + [self.tokenizer.eos_token_id]
        return self._bos + ids

    def answer_ids(self, answer: str) -> list[int]:
        """Target tokens: the answer (leading space, so it continues the prompt) and eos."""
        ids = self.tokenizer(" " + answer.strip(), add_special_tokens=False).input_ids
        return ids[: self.max_answer_tokens] + [self.tokenizer.eos_token_id]

    def training_features(self, example: QAExample) -> dict[str, list[int]]:
        """input_ids and labels with the prompt masked out of the loss (the first answer is the target)."""
        prompt, answer = self.prompt_ids(example), self.answer_ids(example.answers[0])
        if self.is_seq2seq:
            return {"input_ids": prompt, "labels": answer}
        return {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer}


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(row) for row in rows)
    padded = [([value] * (width - len(row)) + row) if left else (row + [value] * (width - len(row))) for row in rows]
    return torch.tensor(padded, dtype=torch.long)


def collate_training(features: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch with attention mask; padded label positions are ignored by the loss."""
    input_ids = [f["input_ids"] for f in features]
    return {
        "input_ids": _pad(input_ids, pad_token_id, left=False),
        "attention_mask": _pad([[1] * len(row) for row in input_ids], 0, left=False),
        "labels": _pad([f["labels"] for f in features], IGNORE_INDEX, left=False),
    }


def collate_prompts(prompts: list[list[int]], pad_token_id: int, left: bool) -> dict[str, torch.Tensor]:
    """Prompt batch for generation: left-padded for decoder-only models so generation continues each prompt."""
    return {
        "input_ids": _pad(prompts, pad_token_id, left=left),
        "attention_mask": _pad([[1] * len(row) for row in prompts], 0, left=left),
    }
