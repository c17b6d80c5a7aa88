"""Forgetting: the generator's loss on the fixed general-text sample."""

import pytest
import torch

from rag_pet.config import ModelConfig
from rag_pet.evaluation.forgetting import general_text_loss, general_texts
from rag_pet.models import build_generator


def test_the_sample_is_the_first_scifact_abstracts():
    texts = general_texts(3)
    assert len(texts) == 3 and all(len(t) > 200 for t in texts)
    assert general_texts(5)[:3] == texts


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_the_loss_is_a_mean_over_tokens_whatever_the_batch_size(arch):
    generator = build_generator(ModelConfig(source="tiny", arch=arch))
    generator.model.train()
    texts = general_texts(5)
    device = torch.device("cpu")
    whole = general_text_loss(generator, texts, device, "fp32", batch_size=8)
    one_at_a_time = general_text_loss(generator, texts, device, "fp32", batch_size=1)
    assert whole == pytest.approx(one_at_a_time, rel=1e-5)
    assert whole > 0
    assert generator.model.training  # measured in eval mode, handed back as it came
