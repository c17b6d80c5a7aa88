"""Retriever-only training on relevance judgements (BEIR train qrels, or article questions' gold paragraphs)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial

import torch

from rag_pet.config import ARTICLE_SOURCES, CorpusConfig, DataConfig, RetrieverConfig, TrainerConfig
from rag_pet.data import Passage, load_beir, load_qa_split, load_scifact, passage_text
from rag_pet.errors import ConfigError
from rag_pet.models.dual_encoder import DualEncoderModel
from rag_pet.models.encoder import BiEncoder, build_encoder
from rag_pet.models.rag import freeze_unused_pooler
from rag_pet.retrieval.bm25 import BM25Retriever
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.training.batching import check_fills_batches, distributed_loader
from rag_pet.training.context import TrainContext
from rag_pet.training.task import LoaderTask


@dataclass(frozen=True)
class TrainingPair:
    """A query, one relevant passage, and passages mined as hard negatives."""

    query: str
    positive: Passage
    negatives: tuple[Passage, ...]


def relevance_pairs(corpus: CorpusConfig, data: DataConfig) -> list[tuple[str, list[str]]]:
    """(query text, relevant passage ids) for the training queries of the corpus: BEIR train qrels, or (an article
    corpus: SQuAD, fictional) each training question's gold paragraph."""
    if corpus.name in ARTICLE_SOURCES:
        examples = load_qa_split(data, data.train_split, data.max_train_examples)
        return [(e.question, [e.gold_passage_id]) for e in examples if e.gold_passage_id]
    dataset = load_scifact() if corpus.name == "scifact" else load_beir(corpus.path)
    if "train" not in dataset.qrels:
        raise ConfigError("corpus.name", corpus.name, "a BEIR dataset with qrels/train.tsv")
    pairs = [
        (dataset.queries[qid], [doc for doc, grade in docs.items() if grade > 0])
        for qid, docs in dataset.qrels["train"].items()
        if qid in dataset.queries
    ]
    return pairs[: data.max_train_examples]


def mine_training_pairs(
    relevance: list[tuple[str, list[str]]], passages: list[Passage], count: int, seed: int
) -> list[TrainingPair]:
    """One pair per (query, relevant passage), with BM25's best `count` non-relevant passages as hard negatives."""
    by_id = {p.id: p for p in passages}
    pairs = [(q, [d for d in docs if d in by_id]) for q, docs in relevance]
    pairs = [(q, docs) for q, docs in pairs if docs]
    mined = BM25Retriever(passages).search([q for q, _ in pairs], count + 10) if count else [[] for _ in pairs]
    result = []
    for (query, relevant), ranking in zip(pairs, mined, strict=True):
        negatives = tuple(by_id[doc] for doc, _ in ranking if doc not in relevant)[:count]
        result.extend(TrainingPair(query, by_id[doc], negatives) for doc in relevant)
    random.Random(seed).shuffle(result)
    return result


def build_dual_encoder(retriever: RetrieverConfig, temperature: float) -> DualEncoderModel:
    """The configured bi-encoder with every tower trainable (BERT's unused pooler head aside)."""
    encoder = build_encoder(retriever)
    encoder.requires_grad_(True)
    freeze_unused_pooler(encoder)
    return DualEncoderModel(encoder, temperature)


class RetrieverTask(LoaderTask):
    """The bi-encoder (both towers train; one if shared) on query/positive/hard-negative batches."""

    def __init__(
        self,
        retriever: RetrieverConfig,
        corpus: CorpusConfig,
        data: DataConfig,
        trainer: TrainerConfig,
        temperature: float,
        hard_negatives: int,
        seed: int,
        ctx: TrainContext,
    ):
        model = build_dual_encoder(retriever, temperature)
        relevance = relevance_pairs(corpus, data)
        pairs = mine_training_pairs(relevance, load_corpus(corpus), hard_negatives, seed)
        check_fills_batches(len(pairs), trainer.batch_size, ctx.world_size)
        collate = partial(collate_pairs, model.retriever)
        loader, sampler = distributed_loader(pairs, trainer.batch_size, seed, ctx.rank, ctx.world_size, collate)
        super().__init__(model, loader, sampler, ctx.device)


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
