"""The whole experiment on a tiny model: eval, train on Ray, eval, W&B offline run, files on disk."""

import json
from pathlib import Path

from rag_pet.experiment import evaluate_model, run_experiment


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
