"""Retriever-only training: BM25 hard negatives, the contrastive loss, and a trained tower that re-indexes."""

import pytest
import torch

from rag_pet.models.dual_encoder import DualEncoderModel
from rag_pet.models.rag import build_trained_encoder, load_trained_retriever
from rag_pet.objectives import objective_of
from rag_pet.retrieval.corpus import load_corpus
from rag_pet.training import LocalContext, run_train_loop
from rag_pet.training.retriever_task import collate_pairs, mine_training_pairs, relevance_pairs
from tests.conftest import compose_config


def retriever_config(tmp_path, *overrides: str):
    base = [
        "debug=tiny",
        "objective=retriever",
        "retriever=tiny",
        "corpus=scifact",
        "corpus.max_passages=300",
        f"index.storage_path={tmp_path / 'indexes'}",
        "rag.hard_negatives=2",
        "trainer.batch_size=4",
        "trainer.lr=1e-3",
        "trainer.max_steps=12",
        "trainer.log_every=1",
        "trainer.checkpoint_every=12",
        "data.max_train_examples=null",
    ]
    return compose_config([*base, *overrides], run_dir=tmp_path / "run")


def training_pairs(config):
    relevance = relevance_pairs(config.corpus, config.data)
    return mine_training_pairs(relevance, load_corpus(config.corpus), config.rag.hard_negatives, config.seed)


def test_hard_negatives_come_from_bm25_and_are_never_relevant(tmp_path):
    config = retriever_config(tmp_path)
    pairs = training_pairs(config)
    assert len(pairs) >= 4
    for pair in pairs:
        assert len(pair.negatives) == 2 and pair.positive not in pair.negatives


def test_the_contrastive_loss_is_cross_entropy_of_each_query_against_all_batch_documents(tmp_path):
    config = retriever_config(tmp_path)
    pairs = training_pairs(config)[:3]
    model = DualEncoderModel(build_trained_encoder(config.retriever), temperature=0.05).eval()
    batch = collate_pairs(model.retriever, pairs)
    assert batch["doc_input_ids"].shape[0] == 3 + 3 * 2  # positives, then every pair's negatives
    with torch.no_grad():
        queries = model.retriever.encode_queries([p.query for p in pairs])
        docs = model.retriever.encode_documents(
            [
                f"{d.title} {d.text}".strip()
                for d in [p.positive for p in pairs] + [n for p in pairs for n in p.negatives]
            ]
        )
        expected = torch.nn.functional.cross_entropy(queries @ docs.T / 0.05, torch.arange(3))
        assert model(**batch).loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_training_lowers_the_loss_and_saves_a_tower_that_reloads(tmp_path):
    config = retriever_config(tmp_path)
    context = LocalContext(tmp_path / "ckpt", torch.device("cpu"), keep=1)
    state = run_train_loop(config, context, objective_of(config))
    losses = [record["loss"] for record in state["history"]]
    assert sum(losses[-3:]) / 3 < losses[0], losses
    model_dir = context.checkpoints()[-1] / "model"
    assert (model_dir / "query_encoder" / "config.json").is_file()  # one shared tower
    reloaded = load_trained_retriever(build_trained_encoder(config.retriever), model_dir)
    assert reloaded.doc_tower is reloaded.query_tower
    assert reloaded.doc_weights_hash() != build_trained_encoder(config.retriever).doc_weights_hash()
