"""Question answering without Ray Serve: retrieve passages from a sharded index, answer with one generator.

The Serve deployments, the Ray Data batch runner and in-process evaluation all call these two classes, so the
three paths prompt, retrieve and decode identically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import torch

from rag_pet.config import RagConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import Passage, QAExample
from rag_pet.devices import autocast, resolve_precision, with_parameters_in
from rag_pet.inference.generation import DecodeClock, generate_answers
from rag_pet.inference.rag_decoding import rag_generate
from rag_pet.models import Generator
from rag_pet.models.encoder import BiEncoder
from rag_pet.models.rag import document_log_prior
from rag_pet.retrieval.sharded import SearchResult, ShardedIndex


@dataclass(frozen=True)
class RetrievedPassage:
    """A passage found for a question, with its inner product with the question's vector."""

    id: str
    title: str
    text: str
    score: float

    @property
    def passage(self) -> Passage:
        return Passage(self.id, self.title, self.text)


# One question, its passages (None: closed-book) and the answer length -> the answer and its decoding steps' times.
AnswerAlone = Callable[[str, list[RetrievedPassage] | None, int], tuple[str, DecodeClock]]


class PassageRetriever:
    """Questions → top-k passages: the query tower encodes, the sharded index searches, the corpus gives the text."""

    def __init__(self, encoder: BiEncoder, index: ShardedIndex, passages: dict[str, Passage]):
        self.encoder, self.index, self.passages = encoder.eval(), index, passages

    @torch.inference_mode()
    def _encode(self, questions: list[str]) -> torch.Tensor:
        return self.encoder.encode_queries(questions).float().cpu()

    def _found(self, vectors: torch.Tensor, result: SearchResult) -> list[list[RetrievedPassage]]:
        scores = torch.einsum("bd,bkd->bk", vectors, torch.as_tensor(result.vectors))
        return [
            [
                RetrievedPassage(doc, self.passages[doc].title, self.passages[doc].text, float(score))
                for doc, score in zip(docs, row_scores.tolist(), strict=True)
                if doc
            ]
            for docs, row_scores in zip(result.doc_ids, scores, strict=True)
        ]

    def retrieve(self, questions: list[str], k: int) -> list[list[RetrievedPassage]]:
        """The best `k` passages per question, best first (fewer where an approximate index finds fewer)."""
        vectors = self._encode(questions)
        return self._found(vectors, self.index.search(vectors.numpy(), k))

    async def retrieve_async(self, questions: list[str], k: int) -> list[list[RetrievedPassage]]:
        """`retrieve` for an event loop: the shard searches are awaited."""
        vectors = self._encode(questions)
        return self._found(vectors, await self.index.search_async(vectors.numpy(), k))


class Answerer:
    """Greedy (or `rag.decoding`) answers of one generator, closed-book or over retrieved passages (each read in
    its own prompt, or all in one with `rag.reader=concatenated`)."""

    def __init__(
        self,
        generator: Generator,
        prompts: PromptEncoder,
        rag: RagConfig | None,
        device: torch.device,
        precision: str = "fp32",
    ):
        """`rag`: the RAG decoding settings (None: closed-book answers only); `precision`: `eval.precision`, generation
        runs under its autocast (weights stay as loaded, so adapters of any method load and switch unchanged)."""
        self.generator, self.prompts, self.rag, self.device = generator, prompts, rag, device
        self.precision = resolve_precision(precision, device)
        generator.model.to(device).eval()

    def answer(
        self,
        questions: list[str],
        passages: list[list[RetrievedPassage]] | None = None,
        max_new_tokens: int = 16,
        model: torch.nn.Module | None = None,
    ) -> list[str]:
        """One answer per question: closed-book, or from each question's retrieved passages as `rag.reader` reads
        them.

        Questions with different numbers of passages are decoded in separate groups. `model` stands in for the
        generator's module (the same weights with an adapter switched on)."""
        model = model or self.generator.model
        passages = passages if passages is not None else [[] for _ in questions]
        answers = [""] * len(questions)
        for count in sorted({len(found) for found in passages}):
            group = [i for i, found in enumerate(passages) if len(found) == count]
            examples = [QAExample(str(i), questions[i], ("",)) for i in group]
            with autocast(self.device, self.precision):
                found = self._answer_group(examples, [passages[i] for i in group], max_new_tokens, model)
            for i, answer in zip(group, found, strict=True):
                answers[i] = answer
        return answers

    @contextmanager
    def answering_alone(self, model: torch.nn.Module | None = None) -> Iterator[AnswerAlone]:
        """`answer(question, passages, max_new_tokens) -> (answer, clock)`: one question at a time, each decoding
        step timed, with the prompt and greedy decoding of `answer`, on weights cast once to `eval.precision`
        (a copy, dropped on exit, where that is not the weights' own dtype; adapters on the base model stay as
        they are) instead of under autocast.

        Why not autocast at batch 1: it casts every weight at every decoding step, which one row cannot amortise.
        Measured with benchmarks/batch1_latency.py (SmolLM2-135M, 2 cores with avx512_bf16, 12 questions, chat
        prompt, 12 new tokens; BENCHMARKS.md): bf16 autocast 110 ms a token; fp32 weights 40 ms a token and
        121 ms to the first token closed-book, 458 ms with k=2 passages; bf16 weights 46 ms a token, 72 and
        191 ms. bf16 weights answer closed-book as fast as fp32 (583 vs 571 ms a whole answer, within noise) and
        RAG 1.3x faster (724 vs 928 ms), so `bf16` (what `auto` resolves to there) answers on a bf16 copy; `fp32`
        answers on the weights themselves. Answers equal `answer`'s in fp32; in bf16 a few may differ (10 of 12
        equal there), as bf16 weights round differently from autocast. `model` as in `answer`."""
        model = with_parameters_in(model or self.generator.model, self.precision).eval()
        yield partial(self._answer_alone, model)

    def _answer_alone(
        self, model: torch.nn.Module, question: str, passages: list[RetrievedPassage] | None, max_new_tokens: int
    ) -> tuple[str, DecodeClock]:
        clock = DecodeClock()
        example = QAExample("0", question, ("",))
        [answer] = self._answer_group([example], [passages or []], max_new_tokens, model, clock)
        return answer, clock

    def _answer_group(
        self,
        examples: list[QAExample],
        passages: list[list[RetrievedPassage]],
        max_new_tokens: int,
        model: torch.nn.Module,
        clock: DecodeClock | None = None,
    ) -> list[str]:
        if not passages[0]:  # closed-book
            prompts = [self.prompts.prompt_ids(example) for example in examples]
        elif self.rag is None:
            raise ValueError("this Answerer answers closed-book only: build it with the rag settings to read passages")
        elif self.rag.reader == "concatenated":
            prompts = [
                self.prompts.passages_prompt_ids(example, [hit.passage for hit in found])
                for example, found in zip(examples, passages, strict=True)
            ]
        else:
            return self._marginal_answers(examples, passages, max_new_tokens, model, clock)
        tokenizer = self.generator.tokenizer
        return generate_answers(
            model, tokenizer, prompts, self.generator.is_seq2seq, len(prompts), max_new_tokens, self.device, clock
        )

    def _marginal_answers(
        self,
        examples: list[QAExample],
        passages: list[list[RetrievedPassage]],
        max_new_tokens: int,
        model: torch.nn.Module,
        clock: DecodeClock | None,
    ) -> list[str]:
        """`rag.decoding` over one prompt per passage, weighted by the retrieval prior."""
        scores = torch.tensor([[hit.score for hit in found] for found in passages])
        log_prior = document_log_prior(scores, None, self.rag.temperature)
        prompts = [
            self.prompts.prompt_ids(example, hit.passage)
            for example, found in zip(examples, passages, strict=True)
            for hit in found
        ]
        return rag_generate(
            model,
            self.generator.tokenizer,
            prompts,
            log_prior,
            self.generator.is_seq2seq,
            self.rag.decoding,
            max_new_tokens,
            self.rag.num_beams,
            clock,
        )
