"""DPR-style retriever training: each query's positive against in-batch and mined hard negatives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers.utils import ModelOutput

from rag_pet.models.encoder import BiEncoder
from rag_pet.models.rag import save_trained_towers


@dataclass
class ContrastiveOutput(ModelOutput):
    """Mean cross-entropy of each query's positive among all documents of the batch."""

    loss: torch.Tensor | None = None


class DualEncoderModel(nn.Module):
    """Queries score every document of the batch: B positives (row b for query b), then the hard negatives.

    The loss is softmax cross-entropy over those scores divided by `temperature` (Karpukhin et al., 2020; the
    scaled cosine of sentence-transformers' MultipleNegativesRankingLoss when embeddings are normalised).
    """

    def __init__(self, retriever: BiEncoder, temperature: float):
        super().__init__()
        self.retriever, self.temperature = retriever, temperature

    def forward(
        self,
        query_input_ids: torch.Tensor,
        query_attention_mask: torch.Tensor,
        doc_input_ids: torch.Tensor,
        doc_attention_mask: torch.Tensor,
    ) -> ContrastiveOutput:
        queries = self.retriever.embed(self.retriever.query_tower, query_input_ids, query_attention_mask)
        documents = self.retriever.embed(self.retriever.doc_tower, doc_input_ids, doc_attention_mask)
        scores = queries @ documents.T / self.temperature
        target = torch.arange(len(queries), device=scores.device)
        return ContrastiveOutput(loss=nn.functional.cross_entropy(scores, target))

    def save_pretrained(self, directory: Path, safe_serialization: bool = True) -> None:
        """The trained towers, loadable with `rag_pet.models.rag.load_trained_retriever`."""
        save_trained_towers(self.retriever, Path(directory))
