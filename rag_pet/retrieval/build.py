"""Build an index version: encode the corpus (Ray Data), train and fill the shards, write the manifest."""

from __future__ import annotations

import logging
from pathlib import Path

import faiss
import numpy as np

from rag_pet.config import CorpusConfig, IndexSource
from rag_pet.data import Passage, passage_text
from rag_pet.errors import ConfigError
from rag_pet.models.rag import build_trained_encoder
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.encode import encode_corpus, load_encoded
from rag_pet.retrieval.faiss_index import shard_bounds, trained_empty_index
from rag_pet.retrieval.store import IndexStoreError, Manifest, write_version

logger = logging.getLogger(__name__)


def build_index_version(
    source: IndexSource, trained_dir: Path | None = None, base_corpus: CorpusConfig | None = None
) -> tuple[Path, Manifest]:
    """Encode, index and shard the configured corpus; return the new version's directory and manifest.

    `trained_dir` (towers saved by a training run) replaces the configured encoder's weights. With `base_corpus`
    (a corpus this one grew from, e.g. before new articles arrived) only the passages it lacks are encoded: the
    others' vectors are the base corpus's, cached by content (encoder weights and corpus hash) when it was indexed.
    """
    corpus, index, retriever = source.corpus, source.index, source.retriever
    passages = load_corpus(corpus)
    if index.num_shards > len(passages):
        raise ConfigError("index.num_shards", index.num_shards, f"at most the number of passages ({len(passages)})")
    encoder = build_trained_encoder(retriever, trained_dir)
    weights_hash = encoder.doc_weights_hash()
    vectors_by_id: dict[str, np.ndarray] = {}
    for group in _encoding_groups(passages, base_corpus):
        ids, vectors = _encoded(source, group, weights_hash, trained_dir)
        vectors_by_id.update(zip(ids, vectors, strict=True))
    manifest = Manifest(
        name=source.name,
        version=0,
        encoder=encoder.name,
        encoder_weights_sha256=weights_hash,
        corpus=corpus.name,
        corpus_sha256=corpus_sha256(passages),
        factory=index.factory,
        metric=index.metric,
        dim=0,
        num_vectors=0,
        num_shards=0,
        shard_bounds=[],
    )
    ids = [p.id for p in passages]
    vectors = np.stack([vectors_by_id[i] for i in ids])
    return index_vectors(source.root, manifest, ids, vectors, index.num_shards, index.train_sample)


def _encoding_groups(passages: list[Passage], base_corpus: CorpusConfig | None) -> list[list[Passage]]:
    """The passage lists to encode (each cached on its own): the base corpus and what it lacks, when every base
    passage is in this corpus unchanged; else the whole corpus."""
    if base_corpus is None:
        return [passages]
    base = load_corpus(base_corpus)
    present = set(passages)
    if not all(p in present for p in base):
        logger.info("the base corpus is not part of this one: encoding all %d passages", len(passages))
        return [passages]
    known = set(base)
    added = [p for p in passages if p not in known]
    logger.info("encoding the %d passages the base corpus lacks (%d re-used)", len(added), len(base))
    return [base, added] if added else [base]


def _encoded(
    source: IndexSource, passages: list[Passage], weights_hash: str, trained_dir: Path | None
) -> tuple[list[str], np.ndarray]:
    """Ids and vectors of `passages`, encoded with Ray Data into (or read from) their content-addressed cache."""
    index = source.index
    encoded_dir = source.root / source.name / "embeddings" / f"{weights_hash[:16]}-{corpus_sha256(passages)[:16]}"
    encode_corpus(
        [p.id for p in passages],
        [passage_text(p) for p in passages],
        source.retriever,
        encoded_dir,
        part_size=index.part_size,
        batch_size=index.encode_batch_size,
        concurrency=index.encode_concurrency,
        num_cpus=index.encode_cpus,
        num_gpus=index.encode_gpus,
        trained_dir=trained_dir,
    )
    ids, vectors = load_encoded(encoded_dir, len(passages), index.part_size)
    if ids != [p.id for p in passages]:
        raise IndexStoreError(
            f"index error: encoded parts in {encoded_dir} do not match the corpus; delete that directory and rebuild"
        )
    return ids, vectors


def index_vectors(
    root: Path, manifest: Manifest, ids: list[str], vectors: np.ndarray, num_shards: int, train_sample: int
) -> tuple[Path, Manifest]:
    """Train one index (`manifest.factory`) on a sample, fill a clone per shard, write the next version."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    trained = trained_empty_index(vectors, manifest.factory, manifest.metric, train_sample)
    bounds = shard_bounds(len(vectors), num_shards)
    shards = []
    for start, end in bounds:
        shard = faiss.clone_index(trained)
        shard.add(vectors[start:end])
        shards.append((shard, vectors[start:end]))
    manifest.dim, manifest.num_vectors, manifest.num_shards = int(vectors.shape[1]), len(vectors), len(bounds)
    manifest.shard_bounds = [list(bound) for bound in bounds]
    directory = write_version(root, manifest, ids, shards)
    logger.info("wrote %s (%d vectors, %d shards)", directory, len(vectors), len(bounds))
    return directory, manifest


def index_external_vectors(
    root: Path,
    name: str,
    ids: list[str],
    vectors: np.ndarray,
    *,
    factory: str = "Flat",
    metric: str = "ip",
    num_shards: int = 1,
    train_sample: int = 50000,
) -> tuple[Path, Manifest]:
    """Index vectors made outside the encoding pipeline (benchmarks, a user's own embeddings): no hashes to check."""
    manifest = Manifest(
        name=name,
        version=0,
        encoder="external",
        encoder_weights_sha256="",
        corpus="external",
        corpus_sha256="",
        factory=factory,
        metric=metric,
        dim=0,
        num_vectors=0,
        num_shards=0,
        shard_bounds=[],
    )
    return index_vectors(Path(root), manifest, ids, vectors, num_shards, train_sample)
