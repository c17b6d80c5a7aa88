"""Retrieval sections of the config: the bi-encoder, the corpus, the FAISS index and RAG training, and the index
family (`IndexSource`) the first three describe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rag_pet.config.articles import (
    ARTICLE_SOURCES,
    FICTIONAL_ENTITIES,
    FICTIONAL_SEED,
    check_fictional_entities,
    documents_folder,
)
from rag_pet.config.checks import one_of, positive
from rag_pet.errors import ConfigError
from rag_pet.naming import safe_name

ENCODER_SOURCES = ("minilm", "tiny", "path")
POOLINGS = ("mean", "cls")
CORPORA = (*ARTICLE_SOURCES, "scifact", "beir")
METRICS = ("ip", "l2")
MARGINALS = ("sequence", "token")
QUERY_ENCODER_TRAINING = ("frozen", "full", "lora")
DOC_ENCODER_TRAINING = ("frozen", "trainable")
RAG_DECODINGS = ("sequence_fast", "sequence_thorough", "token_greedy", "token_beam")
READERS = ("marginal", "concatenated")


@dataclass
class RetrieverConfig:
    """The bi-encoder: query and document towers (shared or separate), pooling and normalisation."""

    source: str = "minilm"
    path: str | None = None
    shared: bool = True
    pooling: str = "mean"
    normalize: bool = True
    query_max_length: int = 64
    doc_max_length: int = 256
    hidden_size: int = 32
    num_layers: int = 2
    num_heads: int = 4
    init_seed: int = 0

    def __post_init__(self) -> None:
        one_of("retriever.source", self.source, ENCODER_SOURCES)
        if self.source == "path" and not self.path:
            raise ConfigError("retriever.path", self.path, "a local directory with a transformers encoder")
        one_of("retriever.pooling", self.pooling, POOLINGS)
        for name in ("query_max_length", "doc_max_length", "hidden_size", "num_layers", "num_heads"):
            positive(f"retriever.{name}", getattr(self, name))


@dataclass
class CorpusConfig:
    """The passages that are indexed, retrieved and learnt from: bundled SQuAD paragraphs, the generated fictional
    articles (`fictional_seed`, `fictional_entities`: the data's, so that RAG retrieves the articles it is asked
    about), the documents of a `data=documents` folder (`path`: the data's), SciFact abstracts, or a local BEIR
    folder (the first `max_passages` when set), without the passages whose title is in `exclude_titles` (articles
    held back until they "arrive", as a study's freshness test does)."""

    name: str = "squad"
    path: str | None = None
    fictional_seed: int = FICTIONAL_SEED
    fictional_entities: int = FICTIONAL_ENTITIES
    max_passages: int | None = None
    exclude_titles: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        one_of("corpus.name", self.name, CORPORA)
        check_fictional_entities("corpus.fictional_entities", self.fictional_entities)
        if self.name == "beir" and not self.path:
            raise ConfigError("corpus.path", self.path, "a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
        if self.name == "documents":
            self.path = documents_folder("corpus.path", self.path)
        if self.max_passages is not None:
            positive("corpus.max_passages", self.max_passages)


@dataclass
class IndexConfig:
    """A FAISS index over the corpus: factory string, search parameters, shards, encoding resources, storage."""

    factory: str = "Flat"
    metric: str = "ip"
    num_shards: int = 2
    train_sample: int = 50000
    nprobe: int = 8
    ef_search: int = 64
    use_gpu: bool = False
    storage_path: str = "outputs/indexes"
    version: int | None = None
    part_size: int = 1024
    encode_batch_size: int = 64
    encode_concurrency: int = 1
    encode_cpus: float = 1.0
    encode_gpus: float = 0.0
    shard_cpus: float = 0.25
    max_restarts: int = -1

    def __post_init__(self) -> None:
        # absolute from here on: workers run in other directories, and a run records the path it really used
        self.storage_path = str(Path(self.storage_path).expanduser().resolve())
        one_of("index.metric", self.metric, METRICS)
        if not self.factory.strip():
            raise ConfigError(
                "index.factory", self.factory, "a faiss index_factory string such as Flat, IVF256,Flat, HNSW32"
            )
        for name in (
            "num_shards",
            "train_sample",
            "nprobe",
            "ef_search",
            "part_size",
            "encode_batch_size",
            "encode_concurrency",
        ):
            positive(f"index.{name}", getattr(self, name))
        for name in ("encode_cpus", "encode_gpus", "shard_cpus"):
            positive(f"index.{name}", getattr(self, name), allow_zero=True)


@dataclass
class RagConfig:
    """Retrieval-augmented generation (`objective=rag`) and retriever training (`objective=retriever`).

    The generator reads each of the top-`k` passages in turn (`passage_max_tokens` of it, its start kept, unless
    `truncate_passages` is false) and the loss marginalises over them: `sequence` = RAG-Sequence, `token` =
    RAG-Token. `reader=concatenated` instead reads the `k` passages together in one prompt (in-context RAG, RAFT),
    in retrieval order and each cut the same way, and answers greedily from it (`marginal` and `decoding` do not
    apply). The query tower trains when `query_encoder` is `full` or `lora`; the document tower trains only with
    `doc_encoder=trainable`, which re-encodes the corpus into a new index version every `reindex_every` steps,
    while training goes on (`reindex_async`; false waits for each new version, for runs that must be reproducible).
    `retriever_lr` is the learning rate of the retriever towers (default: `trainer.lr`, as for the generator).
    """

    marginal: str = "sequence"
    k: int = 5
    query_encoder: str = "frozen"
    doc_encoder: str = "frozen"
    reindex_every: int = 0
    reindex_async: bool = True
    passage_max_tokens: int = 192
    truncate_passages: bool = True
    decoding: str = "token_greedy"
    num_beams: int = 4
    lora_r: int = 8
    retriever_lr: float | None = None
    temperature: float = 0.05
    hard_negatives: int = 1
    reader: str = "marginal"

    def __post_init__(self) -> None:
        one_of("rag.marginal", self.marginal, MARGINALS)
        one_of("rag.reader", self.reader, READERS)
        one_of("rag.query_encoder", self.query_encoder, QUERY_ENCODER_TRAINING)
        one_of("rag.doc_encoder", self.doc_encoder, DOC_ENCODER_TRAINING)
        one_of("rag.decoding", self.decoding, RAG_DECODINGS)
        for name in ("k", "passage_max_tokens", "num_beams", "lora_r", "temperature"):
            positive(f"rag.{name}", getattr(self, name))
        for name in ("reindex_every", "hard_negatives"):
            positive(f"rag.{name}", getattr(self, name), allow_zero=True)
        if self.retriever_lr is not None:
            positive("rag.retriever_lr", self.retriever_lr)
        if self.doc_encoder == "trainable" and self.reindex_every == 0:
            raise ConfigError(
                "rag.reindex_every", 0, "> 0 with rag.doc_encoder=trainable (the index must follow the document tower)"
            )

    @property
    def retriever_trains(self) -> bool:
        """Whether any retriever weights change during RAG training."""
        return self.query_encoder != "frozen" or self.doc_encoder == "trainable"


def index_name(corpus: CorpusConfig, index: IndexConfig) -> str:
    """Directory name of an index family: corpus and factory string, e.g. `squad_IVF256_Flat`."""
    return f"{corpus.name}_{safe_name(index.factory)}"


def index_root(index: IndexConfig) -> Path:
    """Absolute storage directory of the configured index families."""
    return Path(index.storage_path).expanduser().resolve()


@dataclass(frozen=True)
class IndexSource:
    """The corpus, index settings and retriever of an index family: what building, finding and opening need."""

    corpus: CorpusConfig
    index: IndexConfig
    retriever: RetrieverConfig

    @property
    def name(self) -> str:
        return index_name(self.corpus, self.index)

    @property
    def root(self) -> Path:
        return index_root(self.index)
