"""A training job with its own local Ray instance beside another one on the same host (the test session's)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_job_beside_another_local_ray_instance_trains_without_a_traceback(ray_local, tmp_path):
    overrides = ["debug=tiny", "trainer.max_steps=20", "trainer.checkpoint_every=10", f"hydra.run.dir={tmp_path}"]
    done = subprocess.run(
        [sys.executable, "-m", "jobs.train", *overrides], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Traceback" not in output and "multiple active Ray instances" not in output
    assert (tmp_path / "final_checkpoint" / "model" / "adapter_model.safetensors").is_file()
