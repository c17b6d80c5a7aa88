"""Prompt templates and the tokenising collators that turn QA examples into model inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from rag_pet.config import DataConfig
from rag_pet.data.types import Passage, QAExample
from rag_pet.errors import ConfigError

IGNORE_INDEX = -100

TEMPLATES = {
    "closed_book": "Answer the question with a short phrase.\nQuestion: {question}\nAnswer:",
}
# Retrieval-augmented input: the passage comes first, so truncating it never cuts the question or the cue.
RAG_TEMPLATE = (
    "Answer the question with a short phrase, using the passage.\nPassage: {passage}\nQuestion: {question}\nAnswer:"
)
# All k passages read together (in-context RAG, RAFT): numbered, in retrieval order, before the question.
PASSAGES_TEMPLATE = (
    "Answer the question with a short phrase, using the passages.{passages}\nQuestion: {question}\nAnswer:"
)
PASSAGE_LABEL = "\nPassage {number}:"


def render_prompt(template: str, example: QAExample) -> str:
    """The prompt text of `example` under the named template."""
    return TEMPLATES[template].format(question=example.question)


def passage_prompt_text(passage: Passage) -> str:
    """How a passage reads inside a RAG prompt: its title, then its text."""
    return f"({passage.title}) {passage.text}" if passage.title else passage.text


@dataclass
class PromptEncoder:
    """Tokenises prompts and answers the same way for training and for generation."""

    tokenizer: PreTrainedTokenizerBase
    template: str
    is_seq2seq: bool
    max_prompt_tokens: int
    max_answer_tokens: int
    passage_max_tokens: int | None = None
    chat: bool = False

    def __post_init__(self) -> None:
        bos = self.tokenizer.bos_token_id
        probe = self.tokenizer("a").input_ids
        self._bos = [bos] if bos is not None and probe and probe[0] == bos and not self.is_seq2seq else []
        self._chat_prefix: list[int] = []
        self._chat_suffix: list[int] = []
        if self.chat:
            if not self.tokenizer.chat_template:
                raise ConfigError("data.chat_template", True, "false: this generator's tokenizer has no chat template")
            marker = "\ue000"  # a private-use character: where the user message goes in the rendered template
            rendered = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": marker}], add_generation_prompt=True, tokenize=False
            )
            prefix, suffix = rendered.split(marker)
            self._bos, self._chat_prefix, self._chat_suffix = [], self._tokens(prefix), self._tokens(suffix)

    @classmethod
    def from_config(
        cls,
        tokenizer: PreTrainedTokenizerBase,
        data: DataConfig,
        is_seq2seq: bool,
        passage_max_tokens: int | None = None,
    ) -> PromptEncoder:
        """The encoder `data` configures (template, token budgets, chat template)."""
        return cls(
            tokenizer,
            data.template,
            is_seq2seq,
            data.max_prompt_tokens,
            data.max_answer_tokens,
            passage_max_tokens=passage_max_tokens,
            chat=data.chat_template,
        )

    def _tokens(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False).input_ids

    def prompt_ids(self, example: QAExample, passage: Passage | None = None) -> list[int]:
        """Prompt tokens, keeping the end (where the template asks for the answer) when too long.

        With a passage (RAG), the passage's first `passage_max_tokens` tokens (all of them when None) go between
        the instruction and the question, and `max_prompt_tokens` bounds the question part alone.
        """
        if passage is None:
            return self._wrapped(self._tokens(render_prompt(self.template, example))[-self.max_prompt_tokens :])
        head, tail = RAG_TEMPLATE.split("{passage}")
        return self._wrapped(self._tokens(head) + self._passage_body(passage) + self._question(tail, example))

    def passages_prompt_ids(self, example: QAExample, passages: Sequence[Passage]) -> list[int]:
        """One prompt reading all `passages` together, numbered in the order given, each cut as `prompt_ids` cuts
        its one passage; `max_prompt_tokens` bounds the question part alone."""
        head, tail = PASSAGES_TEMPLATE.split("{passages}")
        ids = self._tokens(head)
        for number, passage in enumerate(passages, start=1):
            ids += self._tokens(PASSAGE_LABEL.format(number=number)) + self._passage_body(passage)
        return self._wrapped(ids + self._question(tail, example))

    def _passage_body(self, passage: Passage) -> list[int]:
        return self._tokens(" " + passage_prompt_text(passage))[: self.passage_max_tokens]

    def _question(self, tail: str, example: QAExample) -> list[int]:
        return self._tokens(tail.format(question=example.question))[-self.max_prompt_tokens :]

    def _wrapped(self, ids: list[int]) -> list[int]:
        """The prompt inside the chat turn, with the model's bos (decoder-only) or eos (encoder-decoder)."""
        ids = self._chat_prefix + ids + self._chat_suffix
        if self.is_seq2seq:
            return ids + [self.tokenizer.eos_token_id]
        return self._bos + ids

    def rag_overhead_tokens(self) -> int:
        """Tokens of a RAG prompt besides the passage, at most (instruction, question part, answer, specials)."""
        head, _ = RAG_TEMPLATE.split("{passage}")
        return self._overhead(len(self._tokens(head)))

    def passages_overhead_tokens(self, k: int) -> int:
        """Tokens of a `k`-passage prompt besides the passages' bodies, at most (instruction, passage labels,
        question part, answer, specials)."""
        head, _ = PASSAGES_TEMPLATE.split("{passages}")
        labels = sum(len(self._tokens(PASSAGE_LABEL.format(number=number))) for number in range(1, k + 1))
        return self._overhead(len(self._tokens(head)) + labels)

    def _overhead(self, instruction: int) -> int:
        chat = len(self._chat_prefix) + len(self._chat_suffix)
        return len(self._bos) + chat + instruction + self.max_prompt_tokens + self.max_answer_tokens + 2

    def answer_ids(self, answer: str) -> list[int]:
        """Target tokens: the answer (after a space, so it continues the prompt, unless it opens a chat turn), eos."""
        ids = self.tokenizer(("" if self.chat else " ") + answer.strip(), add_special_tokens=False).input_ids
        return ids[: self.max_answer_tokens] + [self.tokenizer.eos_token_id]

    def text_features(self, text: str, max_tokens: int) -> dict[str, list[int]]:
        """Language modelling on plain text (its first `max_tokens` tokens): every token is a target. An
        encoder-decoder reconstructs the text from itself."""
        ids = self._tokens(text)[:max_tokens]
        if self.is_seq2seq:
            return {"input_ids": ids, "labels": ids + [self.tokenizer.eos_token_id]}
        return {"input_ids": self._bos + ids, "labels": self._bos + ids}

    def training_features(self, example: QAExample) -> dict[str, list[int]]:
        """input_ids and labels with the prompt masked out of the loss (the first answer is the target)."""
        return self._masked(self.prompt_ids(example), example)

    def passages_training_features(self, example: QAExample, passages: Sequence[Passage]) -> dict[str, list[int]]:
        """`training_features` with `passages` read together in the prompt (`passages_prompt_ids`)."""
        return self._masked(self.passages_prompt_ids(example, passages), example)

    def _masked(self, prompt: list[int], example: QAExample) -> dict[str, list[int]]:
        answer = self.answer_ids(example.answers[0])
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


def collate_rag(features: list[dict[str, list[int]]], pad_token_id: int, is_seq2seq: bool) -> dict[str, torch.Tensor]:
    """(prompt, answer) pairs as one batch whose `labels` are the answers alone, (N, T), -100 where padded.

    Decoder-only rows are [left-padded prompt | right-padded answer], so every answer starts in the same column and
    only the last T + 1 positions need logits; position ids count real tokens, so padding never shifts a position.
    """
    prompts = [f["prompt"] for f in features]
    answers = [f["answer"] for f in features]
    labels = _pad(answers, IGNORE_INDEX, left=False)
    if is_seq2seq:
        return {
            "input_ids": _pad(prompts, pad_token_id, left=False),
            "attention_mask": _pad([[1] * len(row) for row in prompts], 0, left=False),
            "labels": labels,
        }
    attention_mask = torch.cat(
        [_pad([[1] * len(row) for row in prompts], 0, left=True), _pad([[1] * len(a) for a in answers], 0, left=False)],
        dim=1,
    )
    input_ids = torch.cat([_pad(prompts, pad_token_id, left=True), _pad(answers, pad_token_id, left=False)], dim=1)
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": (attention_mask.cumsum(1) - 1).clamp(min=0),
        "labels": labels,
    }


def collate_loss_positions(features: list[dict[str, list[int]]], pad_token_id: int) -> dict[str, torch.Tensor]:
    """`collate_training`'s decoder-only batch with the vocabulary head run only where the loss is taken.

    `logits_to_keep` holds, per row, the T + 1 positions from the prompt's last token on (T: the longest answer),
    and `labels` the same window, so the model's own shifted cross-entropy is the full batch's; the (N, L, V) logits
    of the prompt positions (49k floats per token for SmolLM2) are never computed. Window positions past a row's end
    repeat its last position with label -100.
    """
    batch = collate_training(features, pad_token_id)
    lengths = [len(f["input_ids"]) for f in features]
    starts = [next(i for i, label in enumerate(f["labels"]) if label != IGNORE_INDEX) - 1 for f in features]
    window = max(length - start for start, length in zip(starts, lengths, strict=True))
    offsets = torch.arange(window)
    positions = torch.tensor(starts)[:, None] + offsets
    inside = positions < torch.tensor(lengths)[:, None]
    positions = torch.minimum(positions, torch.tensor(lengths)[:, None] - 1)
    labels = batch["labels"].gather(1, positions).masked_fill(~inside, IGNORE_INDEX)
    return {**batch, "labels": labels, "logits_to_keep": positions}


def last_positions(width: int, count: int) -> torch.Tensor:
    """The last `count` of `width` positions as an index tensor, for a model's `logits_to_keep`.

    Not the int form: that slices the hidden states into a non-contiguous view, and the head's matmul over such a
    view takes torch's batched path, 3x slower forward and backward on CPU than over the gathered copy an index
    tensor makes."""
    return torch.arange(width - count, width)


def collate_prompts(prompts: list[list[int]], pad_token_id: int, left: bool) -> dict[str, torch.Tensor]:
    """Prompt batch for generation: left-padded for decoder-only models so generation continues each prompt."""
    return {
        "input_ids": _pad(prompts, pad_token_id, left=left),
        "attention_mask": _pad([[1] * len(row) for row in prompts], 0, left=left),
    }
