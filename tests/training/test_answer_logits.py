"""Training batches that run the vocabulary head on answer positions only: the same loss and gradients."""

import pytest
import torch

from rag_pet.config import ModelConfig, PeftConfig
from rag_pet.data import QAExample
from rag_pet.data.prompts import PromptEncoder, collate_loss_positions, collate_training
from rag_pet.models import adapt_model, build_generator
from rag_pet.models.adaptation import prepends_virtual_tokens

QUESTIONS = [
    ("Which river flows through Paris?", "the Seine"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("What is the capital of the country that hosted the 1992 summer olympics?", "Madrid"),
    ("Name a gas?", "the noble gas called argon"),
]


def loss_and_gradients(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_head_on_answer_positions_gives_the_full_heads_loss_and_gradients(method):
    generator = build_generator(ModelConfig(source="tiny"))
    model = adapt_model(generator.model, PeftConfig(method=method, dropout=0.0), is_seq2seq=False).train()
    for name, parameter in model.named_parameters():
        if "lora_B" in name:  # non-zero, so lora_A gets a gradient to compare too
            torch.nn.init.normal_(parameter, std=0.1)
    encoder = PromptEncoder(generator.tokenizer, "closed_book", False, 64, 8)
    features = [encoder.training_features(QAExample(str(i), q, (a,))) for i, (q, a) in enumerate(QUESTIONS)]
    pad = generator.tokenizer.pad_token_id
    full_batch, answers_batch = collate_training(features, pad), collate_loss_positions(features, pad)
    answer_columns = max(sum(label != -100 for label in f["labels"]) for f in features)
    assert answers_batch["logits_to_keep"].shape == (len(features), answer_columns + 1)
    assert model(**answers_batch).logits.shape[1] == answer_columns + 1  # not the whole row
    full_loss, full_grads = loss_and_gradients(model, full_batch)
    kept_loss, kept_grads = loss_and_gradients(model, answers_batch)
    torch.testing.assert_close(kept_loss, full_loss, rtol=1e-5, atol=1e-5)
    assert full_grads.keys() == kept_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(kept_grads[name], grad, rtol=1e-5, atol=1e-5, msg=name)


def test_prompt_learning_methods_are_recognised_and_keep_right_padding():
    generator = build_generator(ModelConfig(source="tiny"))
    prompt = adapt_model(generator.model, PeftConfig(method="prompt"), is_seq2seq=False)
    assert prepends_virtual_tokens(prompt)
    lora = adapt_model(build_generator(ModelConfig(source="tiny")).model, PeftConfig(method="lora"), False)
    assert not prepends_virtual_tokens(lora)
