"""Every PET method, through peft's own config classes, on a tiny causal and a tiny seq2seq model."""

import pytest
import torch

from rag_pet.config import PEFT_METHODS_TRAINABLE
from rag_pet.models import adapt_model, attach_adapter, build_generator
from rag_pet.objectives import objective_of
from rag_pet.training import LocalContext, run_train_loop
from rag_pet.training.checkpoint import load_weights
from tests.conftest import compose_config

LEARNING_RATES = {"full": "3e-3", "ia3": "1e-1", "prompt": "1e-1"}


def method_config(arch: str, method: str, run_dir):
    overrides = [
        "debug=tiny",
        f"model={arch}",
        f"peft.method={method}",
        "data.max_train_examples=4",
        "trainer.batch_size=4",
        f"trainer.lr={LEARNING_RATES.get(method, '3e-2')}",
        "trainer.log_every=1",
        "trainer.max_steps=20",
        "trainer.checkpoint_every=20",
        "peft.dropout=0",
    ]
    return compose_config(overrides, run_dir=run_dir)


def logits(model, is_seq2seq: bool) -> torch.Tensor:
    inputs = {
        "input_ids": torch.tensor([[2054, 2003, 1996, 3437]]),
        "attention_mask": torch.ones(1, 4, dtype=torch.long),
    }
    if is_seq2seq:
        inputs["decoder_input_ids"] = torch.tensor([[0, 2054]])
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("method", [m for m in PEFT_METHODS_TRAINABLE if m != "full"])
# The encoder-decoder side with -m slow; test_loop trains a seq2seq model in the default suite.
@pytest.mark.parametrize("arch", ["tiny_llama", pytest.param("tiny_t5", marks=pytest.mark.slow)])
def test_method_learns_and_its_adapter_reloads_to_identical_logits(arch, method, tmp_path):
    config = method_config(arch, method, tmp_path)
    context = LocalContext(tmp_path / "ckpt", torch.device("cpu"), keep=1)
    state = run_train_loop(config, context, objective_of(config))
    losses = [record["loss"] for record in state["history"]]
    assert sum(losses[-3:]) / 3 < 0.97 * losses[0], losses
    assert 0 < state["trainable_params"] < state["total_params"] / 2

    # The checkpointed adapter, attached to a freshly built base model, reproduces the trained model's logits.
    trained = build_generator(config.model)
    live = adapt_model(trained.model, config.peft, trained.is_seq2seq, config.trainer.max_steps)
    load_weights(context.checkpoints()[-1], live)
    fresh = build_generator(config.model)
    reloaded = attach_adapter(fresh.model, context.checkpoints()[-1] / "model")
    expected = logits(live, trained.is_seq2seq)
    if method == "adalora":  # the export drops pruned ranks, so sums run over fewer (zero) terms
        torch.testing.assert_close(logits(reloaded, fresh.is_seq2seq), expected, rtol=1e-5, atol=1e-5)
    else:
        assert torch.equal(logits(reloaded, fresh.is_seq2seq), expected)
    assert not torch.equal(
        logits(build_generator(config.model).model, fresh.is_seq2seq), logits(live, trained.is_seq2seq)
    )
