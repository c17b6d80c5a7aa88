import re

import pytest
import torch
from safetensors.torch import load_file, save_file

from rag_pet.config import ModelConfig, PeftConfig
from rag_pet.errors import ConfigError
from rag_pet.models import (
    adapt_model,
    attach_adapter,
    build_generator,
    count_parameters,
    load_full_model_state,
    save_trained,
)


def tiny(arch: str) -> ModelConfig:
    return ModelConfig(source="tiny", arch=arch, hidden_size=32, num_layers=2, num_heads=4)


def logits(model, is_seq2seq: bool) -> torch.Tensor:
    input_ids = torch.tensor([[101, 2054, 2003, 1996, 3437, 102]])
    extra = {"decoder_input_ids": torch.tensor([[0, 2054, 2003]])} if is_seq2seq else {}
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids, **extra).logits


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_saved_lora_adapter_reloads_to_identical_logits(arch, tmp_path):
    torch.manual_seed(0)
    generator = build_generator(tiny(arch))
    model = adapt_model(generator.model, PeftConfig(method="lora", r=4, alpha=8), generator.is_seq2seq)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # LoRA starts as a no-op; make the adapter change the output
            torch.nn.init.normal_(parameter, std=0.5)
    expected = logits(model, generator.is_seq2seq)
    save_trained(model, tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()

    torch.manual_seed(0)
    fresh = build_generator(tiny(arch))
    base_logits = logits(fresh.model, fresh.is_seq2seq)
    reloaded = attach_adapter(fresh.model, tmp_path / "adapter")
    assert torch.equal(logits(reloaded, fresh.is_seq2seq), expected)
    assert not torch.allclose(base_logits, expected)


def test_methods_choose_what_trains():
    generator = build_generator(tiny("llama"))
    _, total = count_parameters(generator.model)
    lora = adapt_model(generator.model, PeftConfig(method="lora", r=2), False)
    trainable, _ = count_parameters(lora)
    assert 0 < trainable < total // 10
    assert (
        count_parameters(adapt_model(build_generator(tiny("llama")).model, PeftConfig(method="full"), False))[0]
        == total
    )
    assert (
        count_parameters(adapt_model(build_generator(tiny("llama")).model, PeftConfig(method="frozen"), False))[0] == 0
    )


def test_missing_target_module_is_a_config_error():
    generator = build_generator(tiny("llama"))
    with pytest.raises(ConfigError, match="peft.target_modules"):
        adapt_model(generator.model, PeftConfig(method="lora", target_modules=["no_such_proj"]), False)


def test_a_full_model_missing_a_saved_parameter_fails_with_its_name(tmp_path):
    generator = build_generator(tiny("llama"))
    save_trained(generator.model, tmp_path / "model")
    load_full_model_state(build_generator(tiny("llama")).model, tmp_path / "model")  # complete: loads
    state = load_file(tmp_path / "model" / "model.safetensors")
    dropped = "model.layers.1.mlp.down_proj.weight"
    save_file(
        {name: tensor for name, tensor in state.items() if name != dropped}, tmp_path / "model" / "model.safetensors"
    )
    with pytest.raises(ConfigError, match=re.escape(dropped)):
        load_full_model_state(build_generator(tiny("llama")).model, tmp_path / "model")
