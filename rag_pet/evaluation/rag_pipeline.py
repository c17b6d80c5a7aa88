"""Evaluate a RAG pipeline in this process: the (trained) retriever over its index, the generator reading the
top `rag.k` passages with `rag.decoding`; EM/F1, the gold answer's NLL marginalised over those passages, and
recall@1/5 of the gold passage."""

from __future__ import annotations

from pathlib import Path

import torch

from rag_pet.config import DataConfig, EvalConfig, IndexSource, RagConfig
from rag_pet.data.types import QAExample
from rag_pet.evaluation.answer_nll import AnswerScorer
from rag_pet.evaluation.qa_eval import answer_score_and_write
from rag_pet.inference.answering import Answerer, PassageRetriever
from rag_pet.models import Generator
from rag_pet.models.rag import build_trained_encoder
from rag_pet.models.rag_inputs import rag_prompt_encoder
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.retrieval.live_index import ensure_index, open_index
from rag_pet.runtime import ensure_ray


def evaluate_rag_pipeline(
    generator: Generator,
    model_dir: Path | None,
    examples: list[QAExample],
    device: torch.device,
    out_dir: Path,
    *,
    source: IndexSource,
    data: DataConfig,
    rag: RagConfig,
    settings: EvalConfig,
) -> dict[str, float]:
    """EM/F1 (and retrieval recall) of `generator` reading what the retriever in `model_dir` (or the configured
    one) finds in an index built with that retriever's document tower (built now if there is none)."""
    ensure_ray()
    encoder = build_trained_encoder(source.retriever, model_dir)
    index = open_index(source, ensure_index(source, model_dir))
    try:
        retriever = PassageRetriever(encoder, index, {p.id: p for p in load_corpus(source.corpus)})
        prompts = rag_prompt_encoder(data, rag, generator.tokenizer, generator.is_seq2seq)
        answerer = Answerer(generator, prompts, rag, device, settings.precision)
        scorer = AnswerScorer(generator, prompts, rag, device, settings.precision)
        return answer_score_and_write(retriever.retrieve, answerer, settings, examples, rag.k, out_dir, scorer)
    finally:
        index.close()
