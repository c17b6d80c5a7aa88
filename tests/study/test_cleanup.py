"""A study keeps each finished cell's final weights and drops what no later cell or user reads: the Ray Train
checkpoints a finished cell could resume from, and a finished tuning's trial weights. A `trainer.storage_path` the
user chose is never touched."""

import json
from pathlib import Path

import pytest

from rag_pet.config import TrainerConfig
from rag_pet.study.cleanup import drop_resume_checkpoints, drop_trial_weights


def _files(root: Path, *relative: str) -> None:
    for name in relative:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")


def test_a_finished_run_keeps_its_final_weights_and_drops_its_resume_checkpoints(tmp_path):
    _files(tmp_path, "checkpoints/train/checkpoint_1/model/model.safetensors", "final_checkpoint/model/a", "eval/x")
    drop_resume_checkpoints(TrainerConfig(), str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()
    assert (tmp_path / "final_checkpoint/model/a").is_file() and (tmp_path / "eval/x").is_file()


def test_checkpoints_in_a_storage_path_of_the_users_are_left_alone(tmp_path):
    elsewhere = tmp_path / "bucket"
    _files(tmp_path, "run/checkpoints/train/c", "trials/t1/checkpoints/train/c", "trials/t1/final_checkpoint/m")
    trainer = TrainerConfig(storage_path=str(elsewhere))
    drop_resume_checkpoints(trainer, str(tmp_path / "run"))
    drop_trial_weights(tmp_path, trainer)
    assert (tmp_path / "run/checkpoints/train/c").is_file()
    assert (tmp_path / "trials/t1/final_checkpoint/m").is_file()


def test_a_finished_tuning_keeps_each_trials_results_and_drops_its_weights(tmp_path):
    _files(
        tmp_path,
        "summary.json",
        *(
            f"trials/{t}/{f}"
            for t in ("a", "b")
            for f in ("results.json", "checkpoints/train/c/optimizer.pt", "final_checkpoint/model/m", "wandb/run")
        ),
    )
    drop_trial_weights(tmp_path, TrainerConfig())
    for trial in ("a", "b"):
        assert sorted(p.name for p in (tmp_path / "trials" / trial).iterdir()) == ["results.json", "wandb"]
    assert (tmp_path / "summary.json").is_file()


@pytest.mark.usefixtures("ray_local")
def test_every_finished_study_cell_that_trained_keeps_final_weights_only(tiny_study_run):
    compare, _ = tiny_study_run
    cells = Path(compare.study_dir) / "cells"
    trained = [
        record["id"]
        for record in map(json.loads, map(Path.read_text, cells.glob("*.json")))
        if record["status"] == "done" and record["metrics"].get("train_steps")
    ]
    assert trained
    for cell_id in trained:
        assert (cells / cell_id / "final_checkpoint" / "model").is_dir(), cell_id
        assert not (cells / cell_id / "checkpoints").exists(), cell_id
