"""TorchEngine: gradient accumulation, and fp16 loss scaling with its scaler state in checkpoints."""

from dataclasses import replace

import torch

from rag_pet.models import adapt_model, build_generator
from rag_pet.models.adaptation import trainable_state
from rag_pet.training import LocalContext
from rag_pet.training.engine import TorchEngine
from rag_pet.training.task import trainable_parameters


def make_engine(config, trainer, tmp_path):
    torch.manual_seed(0)
    generator = build_generator(config.model)
    model = adapt_model(generator.model, replace(config.peft, dropout=0.0), generator.is_seq2seq, trainer.max_steps)
    groups = trainable_parameters(model)
    return TorchEngine(model, groups, trainer, LocalContext(tmp_path, torch.device("cpu")))


def token_batch(seed: int) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 500, (4, 12), generator=torch.Generator().manual_seed(seed))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def test_accumulating_a_batch_twice_is_one_step_on_it(tiny_config, tmp_path):
    config = tiny_config()
    once = make_engine(config, config.trainer, tmp_path)
    twice = make_engine(config, config.trainer, tmp_path)
    batch = token_batch(0)
    loss_once = once.train_step([batch], step=0)
    loss_twice = twice.train_step([batch, batch], step=0)
    assert abs(loss_once - loss_twice) < 1e-5
    for name, tensor in trainable_state(once.model).items():
        torch.testing.assert_close(trainable_state(twice.model)[name], tensor, rtol=1e-4, atol=1e-6)


def test_fp16_scales_the_loss_learns_and_checkpoints_the_scaler(tiny_config, tmp_path):
    config = tiny_config()  # fp16 needs a GPU in a run config; the engine itself also runs it on CPU
    trainer = replace(config.trainer, precision="fp16", max_steps=20)
    engine = make_engine(config, trainer, tmp_path)
    batch = token_batch(1)
    losses = [engine.train_step([batch], step) for step in range(20)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.7 * losses[0]
    assert engine.scaler.is_enabled() and engine.scaler.get_scale() > 1

    engine.save(tmp_path / "ckpt", rank=0)
    restored = make_engine(config, trainer, tmp_path)
    restored.load(tmp_path / "ckpt")
    assert restored.scaler.get_scale() == engine.scaler.get_scale()
    assert restored.learning_rate() == engine.learning_rate()
