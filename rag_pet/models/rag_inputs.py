"""Turn questions and their retrieved passages into the tensors `RagModel` and RAG decoding read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from rag_pet.config import DataConfig, RagConfig
from rag_pet.data.prompts import PromptEncoder, collate_rag
from rag_pet.data.types import Passage, QAExample, passage_text
from rag_pet.models.encoder import BiEncoder

EMPTY_PASSAGE = Passage("", "", "")


def rag_prompt_encoder(
    data: DataConfig, rag: RagConfig, tokenizer: PreTrainedTokenizerBase, is_seq2seq: bool
) -> PromptEncoder:
    """The prompt encoder of RAG inputs, with the configured passage truncation."""
    return PromptEncoder.from_config(
        tokenizer, data, is_seq2seq, passage_max_tokens=rag.passage_max_tokens if rag.truncate_passages else None
    )


@dataclass
class RagInputs:
    """Tokenises queries (retriever vocabulary) and question ⊕ passage prompts (generator vocabulary)."""

    prompts: PromptEncoder
    retriever: BiEncoder
    pad_token_id: int

    def queries(self, examples: list[QAExample]) -> dict[str, torch.Tensor]:
        """Query-tower tokens of the questions, under the names `RagModel.forward` takes."""
        tokens = self.retriever.tokenize([e.question for e in examples], self.retriever.config.query_max_length)
        return {"query_input_ids": tokens["input_ids"], "query_attention_mask": tokens["attention_mask"]}

    def batch(
        self,
        examples: list[QAExample],
        passages: list[list[Passage]],
        doc_vectors: np.ndarray | None,
        doc_mask: np.ndarray,
        doc_tokens: bool = False,
    ) -> dict[str, torch.Tensor]:
        """A training batch: row b*K + k of the generator input is question b with its k-th passage.

        `doc_tokens` adds the passages' document-tower tokens, for a document tower that trains (its vectors are
        recomputed in the forward pass instead of taken from the index).
        """
        features = [
            {"prompt": self.prompts.prompt_ids(example, passage), "answer": self.prompts.answer_ids(example.answers[0])}
            for example, row in zip(examples, passages, strict=True)
            for passage in row
        ]
        batch = {
            **self.queries(examples),
            **collate_rag(features, self.pad_token_id, self.prompts.is_seq2seq),
            "doc_mask": torch.as_tensor(doc_mask, dtype=torch.bool),
        }
        if doc_tokens:
            texts = [passage_text(p) for row in passages for p in row]
            tokens = self.retriever.tokenize(texts, self.retriever.config.doc_max_length)
            batch.update(doc_input_ids=tokens["input_ids"], doc_attention_mask=tokens["attention_mask"])
        else:
            batch["doc_vectors"] = torch.as_tensor(doc_vectors, dtype=torch.float32)
        return batch
