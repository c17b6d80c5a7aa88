"""Whether a closed-book model stored a fact as text, apart from whether it can answer a question about it: given
the gold passage up to the answer ("Broubol is a town in the"), does greedy decoding continue with the answer?

A fact the model completes but does not answer is stored but not extractable (Allen-Zhu & Li 2023, "Physics of
Language Models 3.1", arXiv 2309.14316, separate the two the same way); one it does not complete was not stored.
"""

from __future__ import annotations

import re

import torch

from rag_pet.data.types import Passage, QAExample
from rag_pet.evaluation.qa_metrics import normalize_answer
from rag_pet.models import Generator

PREFIX_TOKENS = 96  # the end of the passage before the answer: the sentence that states the fact, and more


def completes(continuation: str, answer: str) -> float:
    """1.0 when the continuation's first words (normalised as SQuAD's EM normalises) are the answer's words."""
    words, target = normalize_answer(continuation).split(), normalize_answer(answer).split()
    return float(bool(target) and words[: len(target)] == target)


def probe_prefix(example: QAExample, passages: dict[str, Passage]) -> str | None:
    """The gold passage's text before the first occurrence of the example's first answer; None when the passage
    is unknown or does not hold the answer, or when that text names nothing of its article's title ("Since" before
    "1985, Redith has worked for ..."): no model could tell whose fact to complete."""
    passage = passages.get(example.gold_passage_id or "")
    if passage is None:
        return None
    start = passage.text.find(example.answers[0])
    prefix = passage.text[:start].rstrip() if start > 0 else ""
    title_words = [word for word in re.split(r"[_\s]+", example.article or passage.title) if len(word) > 2]
    return prefix if any(word in prefix for word in title_words) else None


@torch.inference_mode()
def storage_probe(
    generator: Generator,
    examples: list[QAExample],
    passages: dict[str, Passage],
    device: torch.device,
    max_new_tokens: int,
    batch_size: int = 32,
) -> list[float | None]:
    """Per example, 1.0 when greedy decoding of the gold passage's text before the answer (its last
    `PREFIX_TOKENS` tokens, after the model's bos, as text training reads a passage) continues with the answer, else
    0.0; None where there is no such text (`probe_prefix`) or the model is an encoder-decoder (text training there
    reconstructs its input: there is nothing to continue)."""
    if generator.is_seq2seq:
        return [None] * len(examples)
    tokenizer, model = generator.tokenizer, generator.model
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prefixes = [probe_prefix(example, passages) for example in examples]
    asked = [i for i, prefix in enumerate(prefixes) if prefix is not None]
    scores: list[float | None] = [None] * len(examples)
    model.eval()
    for begin in range(0, len(asked), batch_size):
        chunk = asked[begin : begin + batch_size]
        rows = [bos + tokenizer(prefixes[i], add_special_tokens=False).input_ids[-PREFIX_TOKENS:] for i in chunk]
        width = max(len(row) for row in rows)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        input_ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows], device=device)
        mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=device)
        output = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=pad,
        )
        for i, row in zip(chunk, output[:, width:].tolist(), strict=True):
            continuation = tokenizer.decode(row, skip_special_tokens=True)
            scores[i] = completes(continuation, examples[i].answers[0])
    return scores
