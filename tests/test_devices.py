"""`trainer.precision=auto`: bf16 only where the device runs it natively."""

import pytest
import torch

from rag_pet import devices
from rag_pet.devices import has_native_bf16, resolve_precision


@pytest.mark.parametrize("native", [True, False])
def test_auto_picks_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    assert has_native_bf16(torch.device("cpu")) is native
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")


@pytest.mark.parametrize("native", [True, False])
def test_auto_asks_cuda_whether_the_gpu_supports_bf16(monkeypatch, native):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: native)
    assert resolve_precision("auto", torch.device("cuda")) == ("bf16" if native else "fp32")


def test_an_explicit_precision_is_kept_whatever_the_device(monkeypatch):
    monkeypatch.setattr(devices, "has_native_bf16", lambda device: True)
    for requested in ("fp32", "bf16", "fp16"):
        assert resolve_precision(requested, torch.device("cpu")) == requested
