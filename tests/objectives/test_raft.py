"""RAFT as a registered objective: its training passages, its checks, and a tiny run that trains the generator on
passages read together and answers from what the retriever finds."""

import json

import numpy as np
import pytest
from scipy import stats

from rag_pet.data import load_qa_split
from rag_pet.errors import ConfigError
from rag_pet.experiment import run_experiment
from rag_pet.objectives import objective_of, study_method
from rag_pet.objectives.raft import training_contexts
from rag_pet.study.budget import estimated_example_tokens
from tests.conftest import compose_config


def raft_config(tmp_path, *overrides: str):
    base = [
        "debug=tiny",
        "experiment=raft",
        "model=tiny_llama",
        "tracking=disabled",
        "retriever=tiny",
        f"index.storage_path={tmp_path / 'indexes'}",
        "index.shard_cpus=0.1",
        "data.chat_template=false",
        "data.max_train_examples=8",
        "data.max_eval_examples=8",
        "rag.passage_max_tokens=24",
        "trainer.max_steps=4",
        "trainer.batch_size=4",
        "trainer.lr=1.0e-2",
        "trainer.launcher=local",
        "trainer.warmup_steps=0",
        "eval.max_new_tokens=4",
    ]
    return compose_config([*base, *overrides], run_dir=tmp_path / "run")


def contexts(tmp_path, *overrides: str, examples: int = 200):
    config = raft_config(tmp_path, *overrides)
    found = load_qa_split(config.data, config.data.train_split, examples)
    return config, found, training_contexts(config, found)


@pytest.mark.parametrize("fraction", [0.0, 0.5, 0.8, 1.0])
def test_a_share_gold_fraction_of_contexts_holds_the_gold_passage_among_k_distinct_passages(tmp_path, fraction):
    config, examples, found = contexts(tmp_path, f"objective_options.gold_fraction={fraction}", "rag.k=3")
    with_gold = [e.gold_passage_id in {p.id for p in passages} for e, passages in zip(examples, found, strict=True)]
    assert all(len(passages) == 3 == len({p.id for p in passages}) for passages in found)
    if fraction in (0.0, 1.0):
        assert all(with_gold) == (fraction == 1.0) and any(with_gold) == (fraction == 1.0)
    else:  # the share drawn is what was asked for, up to chance
        assert stats.binomtest(sum(with_gold), len(with_gold), fraction).pvalue > 0.001
    positions = [
        [p.id for p in passages].index(e.gold_passage_id)
        for e, passages in zip(examples, found, strict=True)
        if e.gold_passage_id in {p.id for p in passages}
    ]
    if fraction == 1.0:  # the gold passage is not always in one place, so its position teaches nothing
        assert set(positions) == {0, 1, 2}


def test_contexts_are_drawn_again_identically_for_one_seed_and_differently_for_another(tmp_path):
    _, _, first = contexts(tmp_path, examples=20)
    _, _, again = contexts(tmp_path, examples=20)
    _, _, other = contexts(tmp_path, "seed=1", examples=20)
    ids = [[[p.id for p in passages] for passages in run] for run in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("rag.reader=marginal", "rag.reader"),
        ("objective_options.gold_fraction=1.5", "objective_options.gold_fraction"),
        ("+objective_options.distractors=3", "objective_options.distractors"),
        ("peft=frozen", "peft.method"),
        ("rag.query_encoder=full", "rag.query_encoder"),
    ],
)
def test_bad_raft_settings_name_their_field(tmp_path, override, field):
    with pytest.raises(ConfigError) as caught:
        raft_config(tmp_path, override)
    assert caught.value.field == field


def test_a_corpus_without_the_gold_passages_is_refused(tmp_path):
    config = raft_config(tmp_path, "corpus.max_passages=64")
    examples = load_qa_split(config.data, config.data.train_split, 8)
    with pytest.raises(ConfigError, match="gold passage"):
        training_contexts(config, examples)


def test_raft_is_a_study_method_that_trains_and_retrieves():
    method = study_method("raft")
    assert method.trains and method.retrieves and method.overrides[0] == "experiment=raft"


def test_a_flops_budget_counts_k_passages_in_one_row(tmp_path):
    one = estimated_example_tokens(raft_config(tmp_path, "rag.k=1"), False)
    three = estimated_example_tokens(raft_config(tmp_path, "rag.k=3"), False)
    assert three > one + 24  # two more passages of up to 24 tokens each, and their labels


@pytest.mark.slow  # a whole RAFT run
@pytest.mark.usefixtures("ray_local")
def test_a_raft_run_trains_on_passages_read_together_and_answers_from_retrieved_ones(tmp_path):
    config = raft_config(tmp_path, "eval.before_training=true")
    summary = run_experiment(config)
    before, after = summary["rows"]
    assert before["method"] == "rag (passages read together)" and after["method"] == "raft+lora"
    assert after["train_steps"] == 4 and np.isfinite(after["loss"])
    assert after["answer_nll"] != before["answer_nll"]  # the adapter was trained and loaded for answering
    assert 0.0 <= after["retrieval_recall@1"] <= after["retrieval_recall@5"] <= 1.0
    folder = tmp_path / "run" / "eval" / "raft_lora"
    rows = [json.loads(line) for line in (folder / "predictions.jsonl").open()]
    assert len(rows) == 8 and all(len(row["retrieved"]) >= config.rag.k for row in rows)
    assert objective_of(config).generator_dir(config, tmp_path) == tmp_path
