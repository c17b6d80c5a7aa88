"""Assemble a RAG pipeline for evaluation: generator, (trained) retriever, and the index that matches it."""

from __future__ import annotations

from pathlib import Path

import torch

from rag_pet.config import RagPetConfig
from rag_pet.data.types import QAExample
from rag_pet.evaluation.rag_eval import evaluate_rag
from rag_pet.models import Generator
from rag_pet.models.rag import RagModel, build_trained_encoder
from rag_pet.models.rag_inputs import RagInputs, rag_prompt_encoder
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.retrieval.live_index import ensure_index, open_index


def evaluate_rag_pipeline(
    config: RagPetConfig,
    generator: Generator,
    model_dir: Path | None,
    examples: list[QAExample],
    device: torch.device,
    out_dir: Path,
) -> dict[str, float]:
    """EM/F1 (and retrieval recall) of `generator` reading what the retriever in `model_dir` (or the configured
    one) finds in an index built with that retriever's document tower (built now if there is none)."""
    import ray

    if not ray.is_initialized():
        ray.init()
    retriever = build_trained_encoder(config.retriever, model_dir).eval()
    version = ensure_index(config.index, config.retriever, model_dir)
    index = open_index(config.index, version)
    try:
        model = RagModel(generator.model, retriever, generator.is_seq2seq, config.rag)
        prompts = rag_prompt_encoder(config, generator.tokenizer, generator.is_seq2seq)
        inputs = RagInputs(prompts, retriever, generator.tokenizer.pad_token_id)
        passages = {p.id: p for p in load_corpus(config.index)}
        return evaluate_rag(model, inputs, index, passages, examples, config, device, out_dir)
    finally:
        index.close()
