"""The full index build (Ray Data encoding → FAISS shards → manifest) on real MiniLM vectors."""

import faiss
import numpy as np
import pytest

from rag_pet.config import CorpusConfig, IndexConfig, IndexSource, RetrieverConfig, index_name
from rag_pet.errors import ConfigError, DataFormatError
from rag_pet.models.encoder import build_encoder
from rag_pet.retrieval.build import build_index_version
from rag_pet.retrieval.corpus import corpus_sha256, load_corpus
from rag_pet.retrieval.encode import encode_corpus, load_encoded, part_path
from rag_pet.retrieval.sharded import ShardedIndex
from rag_pet.retrieval.store import check_compatible

MINILM = RetrieverConfig(source="minilm", doc_max_length=128)
TINY = RetrieverConfig(source="tiny")


SQUAD_96 = CorpusConfig(name="squad", max_passages=96)


def squad_index(root, shards: int) -> IndexConfig:
    return IndexConfig(
        num_shards=shards,
        storage_path=str(root),
        part_size=32,
        encode_batch_size=32,
        encode_cpus=1,
    )


@pytest.fixture(scope="module")
def minilm_root(tmp_path_factory):
    return tmp_path_factory.mktemp("indexes")


@pytest.mark.parametrize("shards", [1, 2, 4])
def test_minilm_index_sharded_equals_exact_search(ray_local, minilm_root, shards):
    directory, manifest = build_index_version(IndexSource(SQUAD_96, squad_index(minilm_root, shards), MINILM))
    assert manifest.encoder == "all-MiniLM-L6-v2" and manifest.dim == 384 and manifest.num_shards == shards
    passages = load_corpus(SQUAD_96)
    check_compatible(
        manifest,
        dim=384,
        corpus_sha256=corpus_sha256(passages),
        encoder_sha256=build_encoder(MINILM).doc_weights_hash(),
    )

    encoded = next((minilm_root / manifest.name / "embeddings").iterdir())
    ids, vectors = load_encoded(encoded, len(passages), part_size=32)
    assert ids == [p.id for p in passages]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)

    encoder = build_encoder(MINILM)
    questions = [
        "Which NFL team won Super Bowl 50?",
        "What is the capital of Warsaw's region?",
        "Who was Nikola Tesla?",
    ]
    queries = encoder.encode_queries(questions).detach().numpy()
    exact = faiss.IndexFlatIP(384)
    exact.add(vectors)
    scores, rows = exact.search(queries, 10)
    index = ShardedIndex(minilm_root, manifest.name, manifest.version, shard_cpus=0.1)
    result = index.search(queries, 10)
    np.testing.assert_array_equal(result.rows, rows)
    np.testing.assert_array_equal(result.scores, scores)
    np.testing.assert_array_equal(result.vectors, vectors[rows])
    assert result.doc_ids[0][0].startswith("Super_Bowl_50#")
    index.close()


@pytest.mark.slow  # two whole encodings on Ray Data
def test_encoding_resumes_and_skips_written_parts(ray_local, tmp_path):
    ids = [f"d{i}" for i in range(10)]
    texts = [f"passage number {i}" for i in range(10)]
    settings = dict(part_size=4, batch_size=4, concurrency=1, num_cpus=0.5, num_gpus=0)
    assert encode_corpus(ids, texts, TINY, tmp_path, **settings) == 3
    first = load_encoded(tmp_path, 10, 4)
    assert encode_corpus(ids, texts, TINY, tmp_path, **settings) == 0
    part_path(tmp_path, 1).unlink()
    assert encode_corpus(ids, texts, TINY, tmp_path, **settings) == 1
    again = load_encoded(tmp_path, 10, 4)
    assert again[0] == first[0] == ids
    np.testing.assert_array_equal(again[1], first[1])


def test_bad_builds_fail_before_work_and_name_the_problem(tmp_path):
    empty = tmp_path / "beir"
    (empty / "qrels").mkdir(parents=True)
    (empty / "corpus.jsonl").write_text("")
    (empty / "queries.jsonl").write_text("")
    (empty / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
    with pytest.raises(DataFormatError, match="the corpus has no passages"):
        beir = CorpusConfig(name="beir", path=str(empty))
        build_index_version(IndexSource(beir, IndexConfig(storage_path=str(tmp_path)), TINY))
    with pytest.raises(
        ConfigError, match=r"index.num_shards=9 is invalid; allowed: at most the number of passages \(8\)"
    ):
        squad_8 = CorpusConfig(name="squad", max_passages=8)
        build_index_version(IndexSource(squad_8, IndexConfig(num_shards=9, storage_path=str(tmp_path)), TINY))
    assert index_name(CorpusConfig(), IndexConfig(factory="IVF256,PQ32")) == "squad_IVF256_PQ32"


@pytest.mark.slow  # three whole encodings on Ray Data
def test_a_grown_corpus_encodes_only_its_new_passages_and_indexes_the_same_vectors(ray_local, tmp_path):
    first = load_corpus(SQUAD_96)[0].title  # the corpus opens with this article: it "arrives" late
    base = CorpusConfig(name="squad", max_passages=96, exclude_titles=[first])
    added = [p for p in load_corpus(CorpusConfig(name="squad")) if p.title == first]
    grown = CorpusConfig(name="squad", max_passages=96 + len(added))
    index = squad_index(tmp_path, 1)
    _, base_manifest = build_index_version(IndexSource(base, index, TINY))

    grown_dir, manifest = build_index_version(IndexSource(grown, index, TINY), base_corpus=base)
    passages = load_corpus(grown)
    assert manifest.version == base_manifest.version + 1 and manifest.num_vectors == len(passages)
    assert manifest.corpus_sha256 == corpus_sha256(passages)
    caches = {d.name.split("-")[1] for d in (tmp_path / manifest.name / "embeddings").iterdir()}
    assert caches == {corpus_sha256(load_corpus(base))[:16], corpus_sha256(added)[:16]}  # nothing else encoded

    reference_dir, _ = build_index_version(IndexSource(grown, squad_index(tmp_path / "full", 1), TINY))
    grown_index = faiss.read_index(str(next(grown_dir.rglob("*.faiss"))))
    reference = faiss.read_index(str(next(reference_dir.rglob("*.faiss"))))
    np.testing.assert_allclose(
        grown_index.reconstruct_n(0, grown_index.ntotal), reference.reconstruct_n(0, reference.ntotal), atol=1e-5
    )
