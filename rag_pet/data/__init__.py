"""QA datasets and corpora: bundled SQuAD, SciFact (BEIR) and NQ-open, generated fictional entities, and a user's
own files."""

from rag_pet.data.beir import BeirDataset, load_beir, load_scifact
from rag_pet.data.datasets import articles_of, load_qa_split
from rag_pet.data.fictional import fictional_articles, write_squad_json
from rag_pet.data.jsonl import read_qa_jsonl
from rag_pet.data.nq_open import load_nq_open
from rag_pet.data.squad import article_corpus, split_squad, squad_corpus
from rag_pet.data.types import Passage, QAExample, passage_text

__all__ = [
    "BeirDataset",
    "Passage",
    "QAExample",
    "article_corpus",
    "articles_of",
    "fictional_articles",
    "load_beir",
    "load_nq_open",
    "load_qa_split",
    "load_scifact",
    "passage_text",
    "read_qa_jsonl",
    "split_squad",
    "squad_corpus",
    "write_squad_json",
]
