"""The gold answer's mean per-token negative log-likelihood under a method, teacher-forced.

One forward pass per question (per retrieved passage for RAG), far cheaper than generation, and graded where EM is
0 for every method. Closed-book: -log p(y | x) / |y|. RAG: the same marginal the RAG training loss takes over the
retrieved passages (`rag.marginal`, RAG-Sequence or RAG-Token, with the document prior from the retrieval scores
at `rag.temperature`), divided by |y|; with `rag.reader=concatenated`, -log p(y | x, z_1..z_k) / |y| of the one
prompt holding all k passages. |y| counts the answer's tokens and its end-of-sequence token, so a method
that answers and stops is credited as training rewards it. The first gold answer is the target, as in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rag_pet.config import RagConfig
from rag_pet.data.prompts import PromptEncoder, collate_rag
from rag_pet.data.types import QAExample
from rag_pet.devices import autocast, resolve_precision
from rag_pet.inference.answering import RetrievedPassage
from rag_pet.models import Generator
from rag_pet.models.adaptation import prepends_virtual_tokens
from rag_pet.models.rag import MARGINALS, answer_token_logprobs, document_log_prior


class AnswerScorer:
    """Teacher-forced answer NLL of one generator, closed-book or given each question's passages."""

    def __init__(
        self,
        generator: Generator,
        prompts: PromptEncoder,
        rag: RagConfig | None,
        device: torch.device,
        precision: str = "fp32",
        batch_size: int = 16,
    ):
        self.generator, self.prompts, self.rag, self.device = generator, prompts, rag, device
        self.precision = resolve_precision(precision, device)
        self.batch_size = batch_size

    def __call__(
        self, examples: Sequence[QAExample], passages: Sequence[Sequence[RetrievedPassage]] | None = None
    ) -> list[float]:
        """Mean per-token NLL of each example's first answer; `passages` (the top-k each question was answered
        from) makes it the RAG marginal, or the NLL given all of them at once (`rag.reader=concatenated`)."""
        nlls: list[float] = []
        for first in range(0, len(examples), self.batch_size):
            batch = examples[first : first + self.batch_size]
            found = passages[first : first + self.batch_size] if passages is not None else None
            nlls.extend(self._batch(batch, found))
        return nlls

    @torch.inference_mode()
    def _batch(
        self, examples: Sequence[QAExample], passages: Sequence[Sequence[RetrievedPassage]] | None
    ) -> list[float]:
        if passages is None or not any(passages):
            features = [self._features(example, None) for example in examples]
            return self._closed_book(features)
        if self.rag is None:
            raise ValueError("this AnswerScorer scores closed-book answers only: give it the rag settings")
        if self.rag.reader == "concatenated":
            return self._closed_book(
                [self._read_together(e, found) for e, found in zip(examples, passages, strict=True)]
            )
        # questions with different numbers of passages (an approximate index may find fewer) are scored apart
        nlls = [0.0] * len(examples)
        for count in sorted({len(found) for found in passages}):
            group = [i for i, found in enumerate(passages) if len(found) == count]
            found = self._rag([examples[i] for i in group], [passages[i] for i in group])
            for i, value in zip(group, found, strict=True):
                nlls[i] = value
        return nlls

    def _features(self, example: QAExample, passage: RetrievedPassage | None) -> dict[str, list[int]]:
        prompt = self.prompts.prompt_ids(example, passage.passage if passage is not None else None)
        return {"prompt": prompt, "answer": self.prompts.answer_ids(example.answers[0])}

    def _read_together(self, example: QAExample, passages: Sequence[RetrievedPassage]) -> dict[str, list[int]]:
        """The example's prompt with all its passages in it (closed-book where it has none)."""
        if not passages:
            return self._features(example, None)
        prompt = self.prompts.passages_prompt_ids(example, [hit.passage for hit in passages])
        return {"prompt": prompt, "answer": self.prompts.answer_ids(example.answers[0])}

    def _token_logprobs(self, features: list[dict[str, list[int]]]) -> tuple[torch.Tensor, torch.Tensor]:
        """log p of each answer token, (N, T), and its mask; answers left-aligned."""
        if len(features) > 1 and not self.generator.is_seq2seq and prepends_virtual_tokens(self.generator.model):
            # peft drops position ids under prompt learning, so a left-padded row would see its positions moved
            return _stacked([self._token_logprobs([feature]) for feature in features])
        batch = collate_rag(features, self.generator.tokenizer.pad_token_id, self.generator.is_seq2seq)
        batch = {name: tensor.to(self.device) for name, tensor in batch.items()}
        self.generator.model.eval()
        with autocast(self.device, self.precision):
            logprobs, mask = answer_token_logprobs(self.generator.model, batch, self.generator.is_seq2seq)
        return logprobs.float().cpu(), mask.cpu()

    def _closed_book(self, features: list[dict[str, list[int]]]) -> list[float]:
        logprobs, mask = self._token_logprobs(features)
        return (-(logprobs * mask).sum(-1) / mask.sum(-1)).tolist()

    def _rag(self, examples: list[QAExample], passages: list[Sequence[RetrievedPassage]]) -> list[float]:
        features = [
            self._features(example, hit) for example, found in zip(examples, passages, strict=True) for hit in found
        ]
        logprobs, mask = self._token_logprobs(features)
        questions, k = len(examples), len(passages[0])
        scores = torch.tensor([[hit.score for hit in found] for found in passages], dtype=torch.float32)
        log_prior = document_log_prior(scores, None, self.rag.temperature)
        answer_mask = mask.view(questions, k, -1)[:, 0]
        nll = MARGINALS[self.rag.marginal](log_prior, logprobs.view(questions, k, -1), answer_mask)
        return (nll / answer_mask.sum(-1)).tolist()


def _stacked(rows: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """One-row (log-probs, mask) pairs as one right-padded batch."""
    width = max(logprobs.shape[1] for logprobs, _ in rows)
    logprobs = torch.zeros(len(rows), width)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (row, row_mask) in enumerate(rows):
        logprobs[i, : row.shape[1]], mask[i, : row.shape[1]] = row[0], row_mask[0]
    return logprobs, mask
