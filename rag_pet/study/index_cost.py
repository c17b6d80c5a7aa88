"""What an index costs a retrieving method: FLOPs to build it and FLOPs to search it, known before Ray starts.

Both follow from the index source alone (the corpus as `load_corpus` reads it, the retriever's towers and their
tokenizer), so a FLOPs budget can charge the index to a method while the study is planned; each is computed once
per source in a process (a study plans, runs and reports many cells over the same index).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rag_pet.config import IndexSource, RagPetConfig, RetrieverConfig

QUESTIONS_PER_REPORT = 1000


@dataclass(frozen=True)
class _Towers:
    """What counting needs of a bi-encoder: its towers' parameters, the vector size and the tokenizer."""

    doc_params: int
    query_params: int
    dim: int
    tokenizer: object


def encoding_flops(source: IndexSource, passages: list) -> float:
    """Forward FLOPs of encoding `passages` with the document tower: 2 per parameter and token (cut to the tower's
    `doc_max_length`), as the index build encodes them."""
    from rag_pet.data import passage_text

    towers = _towers(source.retriever)
    tokens = _token_count(towers, [passage_text(p) for p in passages], source.retriever.doc_max_length)
    return 2.0 * towers.doc_params * tokens


def index_flops(source: IndexSource) -> float:
    """FLOPs of building the index from scratch: every passage of the corpus through the document tower."""
    return _index_facts(source)[0]


def retrieval_flops_per_1k(source: IndexSource, questions: list[str]) -> float:
    """FLOPs of retrieving for 1,000 questions like `questions`, on top of generating their answers.

    Per question: the query tower's forward pass, 2 FLOPs per parameter and token over the questions' mean token
    count (cut to `query_max_length`), plus one inner product with every indexed vector, 2 FLOPs per dimension
    (a multiply and an add): `1000 * (2 * P_query * mean_tokens + 2 * dim * vectors)`. The second term is an exact
    (`Flat`) search; an IVF or HNSW index compares fewer vectors, so for those it is an upper bound.
    """
    towers = _towers(source.retriever)
    mean_tokens = _token_count(towers, questions, source.retriever.query_max_length) / max(len(questions), 1)
    vectors = _index_facts(source)[1]
    per_question = 2.0 * towers.query_params * mean_tokens + 2.0 * towers.dim * vectors
    return QUESTIONS_PER_REPORT * per_question


def index_costs(config: RagPetConfig) -> dict[str, float]:
    """A retrieving run's `index_flops` and `retrieval_flops_per_1k` (over the questions it is evaluated on)."""
    from rag_pet.data import load_qa_split

    data = config.data
    questions = [example.question for example in load_qa_split(data, data.eval_split, data.max_eval_examples)]
    source = config.index_source
    return {"index_flops": index_flops(source), "retrieval_flops_per_1k": retrieval_flops_per_1k(source, questions)}


_INDEX_FACTS: dict[str, tuple[float, int]] = {}
_TOWERS: dict[str, _Towers] = {}


def _key(*sections) -> str:
    return json.dumps([asdict(section) for section in sections], sort_keys=True, default=str)


def _index_facts(source: IndexSource) -> tuple[float, int]:
    """(FLOPs to build, vectors held) of the source's index; computed once per corpus and retriever."""
    from rag_pet.retrieval.corpus import load_corpus

    key = _key(source.corpus, source.retriever)
    if key not in _INDEX_FACTS:
        passages = load_corpus(source.corpus)
        _INDEX_FACTS[key] = (encoding_flops(source, passages), len(passages))
    return _INDEX_FACTS[key]


def _towers(retriever: RetrieverConfig) -> _Towers:
    """The bi-encoder's counts, built once per retriever config."""
    from rag_pet.models.encoder import build_encoder

    key = _key(retriever)
    if key not in _TOWERS:
        encoder = build_encoder(retriever)
        _TOWERS[key] = _Towers(
            doc_params=sum(p.numel() for p in encoder.doc_tower.parameters()),
            query_params=sum(p.numel() for p in encoder.query_tower.parameters()),
            dim=encoder.dim,
            tokenizer=encoder.tokenizer,
        )
    return _TOWERS[key]


def _token_count(towers: _Towers, texts: list[str], max_length: int) -> int:
    """Tokens of `texts` as a tower reads them: truncated to `max_length`, without padding."""
    if not texts:
        return 0
    encoded = towers.tokenizer(texts, truncation=True, max_length=max_length)
    return sum(len(ids) for ids in encoded["input_ids"])
