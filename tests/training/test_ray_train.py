"""LoRA under Ray Train's TorchTrainer with 1 and 2 workers (DDP over gloo)."""

import pytest

from tests.conftest import train

MEMORISE = (
    "data.max_train_examples=8",
    "trainer.lr=3e-2",
    "trainer.log_every=1",
    "trainer.max_steps=20",
    "trainer.cpus_per_worker=1",
    "trainer.checkpoint_every=10",
)


# Both runs repeat others of the default suite, so they run with -m slow: one worker is how `run_experiment` trains
# (tests/test_experiment.py); LoRA under DDP on two workers is the reference of the ZeRO runs, whose loss falls and
# whose adapter is exported (tests/training/test_deepspeed.py); the loss halving on a memorisable batch is
# tests/training/test_loop.py's.
@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_lora_under_ray_train_lowers_the_loss(ray_local, tiny_config, workers):
    config = tiny_config(*MEMORISE, f"trainer.num_workers={workers}", f"trainer.batch_size={8 // workers}")
    result = train(config)
    losses = [record["loss"] for record in result.state.history]
    assert result.state.step == 20 and len(losses) == 20
    assert losses[-1] < 0.5 * losses[0]
    assert (result.model_dir / "adapter_model.safetensors").is_file()
    assert result.checkpoint_dir.parent == result.model_dir.parent.parent
