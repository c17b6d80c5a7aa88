"""Retriever-only training on relevance judgements (BEIR train qrels, or SQuAD questions' gold paragraphs)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

import torch

from rag_pet.config import RagPetConfig
from rag_pet.data import Passage, load_beir, load_qa_split, load_scifact, passage_text
from rag_pet.errors import RagPetConfigError
from rag_pet.models.dual_encoder import DualEncoderModel
from rag_pet.models.encoder import BiEncoder, build_encoder
from rag_pet.models.rag import freeze_unused_pooler
from rag_pet.retrieval.bm25 import BM25Retriever
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.training.context import TrainContext
from rag_pet.training.loop import LoaderTask, distributed_loader


@dataclass(frozen=True)
class TrainingPair:
    """A query, one relevant passage, and passages mined as hard negatives."""

    query: str
    positive: Passage
    negatives: tuple[Passage, ...]


def relevance_pairs(config: RagPetConfig) -> list[tuple[str, list[str]]]:
    """(query text, relevant passage ids) for the training queries of the index's corpus."""
    if config.index.corpus == "squad":
        examples = load_qa_split(config.data, config.data.train_split, config.data.max_train_examples)
        return [(e.question, [e.gold_passage_id]) for e in examples if e.gold_passage_id]
    dataset = load_scifact() if config.index.corpus == "scifact" else load_beir(config.index.corpus_path)
    if "train" not in dataset.qrels:
        raise RagPetConfigError("index.corpus", config.index.corpus, "a BEIR dataset with qrels/train.tsv")
    pairs = [
        (dataset.queries[qid], [doc for doc, grade in docs.items() if grade > 0])
        for qid, docs in dataset.qrels["train"].items()
        if qid in dataset.queries
    ]
    return pairs[: config.data.max_train_examples]


def mine_training_pairs(config: RagPetConfig, passages: list[Passage]) -> list[TrainingPair]:
    """One pair per (query, relevant passage), with BM25's best non-relevant passages as hard negatives."""
    by_id = {p.id: p for p in passages}
    pairs = [(q, [d for d in docs if d in by_id]) for q, docs in relevance_pairs(config)]
    pairs = [(q, docs) for q, docs in pairs if docs]
    count = config.rag.hard_negatives
    mined = BM25Retriever(passages).search([q for q, _ in pairs], count + 10) if count else [[] for _ in pairs]
    result = []
    for (query, relevant), ranking in zip(pairs, mined, strict=True):
        negatives = tuple(by_id[doc] for doc, _ in ranking if doc not in relevant)[:count]
        result.extend(TrainingPair(query, by_id[doc], negatives) for doc in relevant)
    random.Random(config.seed).shuffle(result)
    return result


def build_dual_encoder(config: RagPetConfig) -> DualEncoderModel:
    """The configured bi-encoder with every tower trainable (BERT's unused pooler head aside)."""
    retriever = build_encoder(config.retriever)
    retriever.requires_grad_(True)
    freeze_unused_pooler(retriever)
    return DualEncoderModel(retriever, config.rag.temperature)


class RetrieverTask(LoaderTask):
    """The bi-encoder (both towers train; one if shared) on query/positive/hard-negative batches."""

    def __init__(self, config: RagPetConfig, ctx: TrainContext):
        self.model, self.device = build_dual_encoder(config), ctx.device
        pairs = mine_training_pairs(config, load_corpus(config.index))
        need = config.trainer.batch_size * ctx.world_size
        if len(pairs) < need:
            raise RagPetConfigError("data.max_train_examples", len(pairs), f">= trainer.batch_size x workers = {need}")
        self.loader, self.sampler = distributed_loader(pairs, config, ctx, partial(collate_pairs, self.model.retriever))


def collate_pairs(retriever: BiEncoder, pairs: list[TrainingPair]) -> dict[str, torch.Tensor]:
    """Tokenised queries and documents (positives, then negatives) for `DualEncoderModel`."""
    documents = [p.positive for p in pairs] + [n for p in pairs for n in p.negatives]
    queries = retriever.tokenize([p.query for p in pairs], retriever.config.query_max_length)
    docs = retriever.tokenize([passage_text(d) for d in documents], retriever.config.doc_max_length)
    return {
        "query_input_ids": queries["input_ids"],
        "query_attention_mask": queries["attention_mask"],
        "doc_input_ids": docs["input_ids"],
        "doc_attention_mask": docs["attention_mask"],
    }
