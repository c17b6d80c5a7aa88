"""Forgetting: how much a generator's language modelling of general text changed with training.

peft's method comparison reports forgetting as the change of the model's loss on a fixed general-text sample; here
the sample is the first SciFact abstracts (bundled, and unrelated to the QA tasks the platform trains on).
"""

from __future__ import annotations

import torch

from rag_pet.data import load_scifact
from rag_pet.devices import autocast, resolve_precision
from rag_pet.models import Generator

GENERAL_TEXT_TOKENS = 128


def general_texts(count: int) -> list[str]:
    """The first `count` SciFact abstracts: the fixed general-text sample."""
    return [passage.text for passage in load_scifact().corpus[:count]]


@torch.no_grad()
def general_text_loss(
    generator: Generator, texts: list[str], device: torch.device, precision: str = "auto", batch_size: int = 8
) -> float:
    """Mean per-token loss of the generator on `texts`, each cut to its first 128 tokens.

    A decoder predicts each text from its start; an encoder-decoder reconstructs the text from itself."""
    tokenizer, model = generator.tokenizer, generator.model
    was_training = model.training
    model.eval()
    total_loss, total_tokens = 0.0, 0
    try:
        for first in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[first : first + batch_size],
                truncation=True,
                max_length=GENERAL_TEXT_TOKENS,
                padding=True,
                return_tensors="pt",
            ).to(device)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            with autocast(device, resolve_precision(precision, device)):
                loss = model(**batch, labels=labels).loss.float().item()
            # the model's loss is a mean over predicted tokens: weight each batch by its own count
            predicted = int((labels[:, 0 if generator.is_seq2seq else 1 :] != -100).sum())
            total_loss += loss * predicted
            total_tokens += predicted
    finally:
        model.train(was_training)
    return total_loss / max(total_tokens, 1)
