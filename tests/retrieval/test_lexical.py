from rag_pet.data import Passage
from rag_pet.retrieval.bm25 import BM25Retriever
from rag_pet.retrieval.fusion import reciprocal_rank_fusion

PASSAGES = [
    Passage("a", "Rivers", "The Seine flows through Paris and into the English Channel."),
    Passage("b", "Mountains", "Mont Blanc is the highest mountain of the Alps."),
    Passage("c", "Cities", "Lyon lies at the confluence of the Rhone and the Saone rivers."),
]


def test_bm25_ranks_the_passage_sharing_stemmed_terms_first():
    results = BM25Retriever(PASSAGES).search(["which river is flowing through Paris", "highest mountains"], k=3)
    assert results[0][0][0] == "a"
    assert results[1][0][0] == "b"
    assert results[0][0][1] > results[0][1][1]


def test_reciprocal_rank_fusion_known_values():
    fused = reciprocal_rank_fusion([[("a", 9.0), ("b", 8.0)], [("b", 0.9), ("c", 0.5)]], k=3, constant=60)
    assert [doc for doc, _ in fused] == ["b", "a", "c"]
    assert fused[0][1] == 1 / 62 + 1 / 61
    assert fused[1][1] == 1 / 61 and fused[2][1] == 1 / 62
