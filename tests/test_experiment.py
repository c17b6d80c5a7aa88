"""The whole experiment on a tiny model: eval, train on Ray, eval, W&B offline run, files on disk."""

import json
from pathlib import Path

import pytest

from rag_pet.evaluation.steps import eval_folder
from rag_pet.experiment import evaluate_model, method_label, run_experiment
from tests.conftest import compose_config


def test_experiment_writes_everything_a_researcher_needs(ray_local, tiny_config):
    config = tiny_config("tracking=wandb_offline", "eval.before_training=true")
    summary = run_experiment(config)
    run_dir = summary["run_dir"]

    assert [row["method"] for row in summary["rows"]] == ["zero-shot", "lora"]
    lora = summary["rows"][1]
    assert lora["trainable_params"] > 0 and lora["train_steps"] == 4
    assert lora["train_tokens"] > 0 and lora["train_flops"] > 0 and lora["peak_memory_bytes"] > 0
    for label in ("zero_shot", "lora"):
        metrics = json.loads(open(f"{run_dir}/eval/{label}/metrics.json").read())
        assert metrics["count"] == 8 and 0.0 <= metrics["f1"] <= 1.0
        predictions = [json.loads(line) for line in open(f"{run_dir}/eval/{label}/predictions.jsonl")]
        assert len(predictions) == 8 and {"id", "question", "prediction", "answers", "f1"} <= predictions[0].keys()
    assert open(f"{lora['model_dir']}/adapter_model.safetensors", "rb").read(8)
    assert json.loads(open(f"{run_dir}/results.json").read())["rows"] == summary["rows"]

    offline_runs = list(Path(run_dir, "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    # wandb-core keeps an offline run as protobuf records in run-<id>.wandb; keys are stored as UTF-8.
    records = next(offline_runs[0].glob("run-*.wandb")).read_bytes()
    for key in (b"trainer", b"max_steps", b"train/loss", b"train/tokens_per_s", b"lora/f1", b"zero-shot/exact_match"):
        assert key in records, key

    # The saved adapter evaluates to the same predictions through the evaluate job's function.
    again = evaluate_model(tiny_config("eval.model_dir=" + lora["model_dir"]))
    assert again["rows"][0]["f1"] == lora["f1"]


REINDEXED = ["rag.doc_encoder=trainable", "rag.reindex_every=2"]


@pytest.mark.parametrize(
    ("overrides", "trained", "folder"),
    [
        ([], False, "zero_shot"),
        ([], True, "lora"),
        (["objective=retriever"], False, "retriever_base"),
        (["objective=retriever"], True, "retriever"),
        (["objective=rag", "retriever.shared=false"], False, "rag"),
        (["objective=rag", "retriever.shared=false", "rag.query_encoder=full"], True, "rag_lora_query_full"),
        (
            ["objective=rag", "peft=frozen", "rag.doc_encoder=trainable", "rag.reindex_every=2"],
            True,
            "rag_doc_reindexed",
        ),
    ],
)
def test_every_method_label_maps_to_a_clean_folder_name(tmp_path, overrides, trained, folder):
    config = compose_config(["debug=tiny", *overrides], run_dir=tmp_path)
    assert eval_folder(method_label(config, trained)) == folder
