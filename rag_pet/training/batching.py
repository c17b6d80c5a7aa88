"""Training batches: seeded, sharded loaders that resume mid-epoch, and the checks that a worker gets a batch."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, DistributedSampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from rag_pet.config import CorpusConfig, DataConfig
from rag_pet.data import Passage, QAExample, load_qa_split
from rag_pet.data.datasets import load_split_passages
from rag_pet.data.document_injection import document_fact_questions, document_paraphrases, renditions_of
from rag_pet.data.fictional import fictional_fact_questions, fictional_renditions
from rag_pet.errors import ConfigError
from rag_pet.retrieval.corpus import load_corpus


def token_count(batch: dict[str, torch.Tensor]) -> int:
    """Tokens a micro-batch feeds through its models (every attention mask's ones)."""
    return sum(int(tensor.sum()) for name, tensor in batch.items() if name.endswith("attention_mask"))


def endless_batches(loader: DataLoader, sampler: DistributedSampler, start: int) -> Iterator:
    """Endless micro-batches in a seeded order, starting where a run that consumed `start` of them stopped."""
    first_epoch, offset = divmod(start, len(loader))
    for epoch in itertools.count(first_epoch):
        sampler.set_epoch(epoch)
        yield from itertools.islice(loader, offset, None)
        offset = 0


class LengthGroupedBatches(DistributedSampler):
    """`DistributedSampler`'s seeded, epoch-keyed order cut into batches of items of like length, in a shuffled
    order of batches: transformers' `get_length_grouped_indices` sorts the shuffled items within mega-batches (of
    up to 50 batches), then the batches themselves are shuffled, so short and long batches alternate through every
    pass. Each worker takes its contiguous share of every global batch.

    transformers' `DistributedLengthGroupedSampler` is not used as is: it runs each mega-batch from its longest batch
    to its shortest (texts, then every question after them) and deals a batch's rows to workers by stride."""

    def __init__(self, lengths: list[int], batch_size: int, num_replicas: int, rank: int, seed: int):
        super().__init__(lengths, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.lengths = lengths
        self.batch_size = batch_size
        self.global_batches = len(lengths) // (batch_size * num_replicas)
        self.num_samples = self.global_batches * batch_size
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        width = self.batch_size * self.num_replicas
        grouped = get_length_grouped_indices(self.lengths, width, generator=generator)
        batches = [grouped[i * width : (i + 1) * width] for i in range(self.global_batches)]
        share = slice(self.rank * self.batch_size, (self.rank + 1) * self.batch_size)
        order = torch.randperm(len(batches), generator=generator).tolist()
        return iter([index for b in order for index in batches[b][share]])

    def __len__(self) -> int:
        return self.num_samples


def distributed_loader(
    items: list,
    batch_size: int,
    seed: int,
    rank: int,
    world_size: int,
    collate: Callable,
    lengths: list[int] | None = None,
) -> tuple[DataLoader, DistributedSampler]:
    """A seeded, sharded, shuffled loader of `items` that drops the last incomplete batch on every worker; with
    the items' `lengths`, in batches of like length (`LengthGroupedBatches`)."""
    if lengths is None:
        sampler = DistributedSampler(items, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
    else:
        sampler = LengthGroupedBatches(lengths, batch_size, world_size, rank, seed)
    loader = DataLoader(items, batch_size=batch_size, sampler=sampler, collate_fn=collate, drop_last=True)
    return loader, sampler


def check_fills_batches(count: int, batch_size: int, world_size: int) -> None:
    """Refuse training data that cannot give every worker one full batch."""
    need = batch_size * world_size
    if count < need:
        raise ConfigError("data.max_train_examples", count, f">= trainer.batch_size x workers = {need}")


def load_training_examples(data: DataConfig, batch_size: int, world_size: int) -> list[QAExample]:
    """The training questions, checked to fill at least one batch on every worker."""
    examples = load_qa_split(data, data.train_split, data.max_train_examples)
    check_fills_batches(len(examples), batch_size, world_size)
    return examples


def training_texts(data: DataConfig, corpus: CorpusConfig) -> list[Passage]:
    """The texts language modelling trains on, the first `data.max_train_examples` of them: the paragraphs of the
    train split's articles (`data.train_on=passages`), or every passage of `corpus` (`data.train_on=corpus`: the
    very passages an index over that corpus holds, so closed-book training reads the knowledge RAG retrieves); each
    in `data.phrasings` phrasings (`augmented_texts`)."""
    if data.train_on == "corpus":
        passages = load_corpus(corpus)
    else:
        passages = load_split_passages(data, data.train_split)
    passages = passages[: data.max_train_examples] if data.max_train_examples is not None else passages
    return augmented_texts(data, passages)


def augmented_texts(data: DataConfig, passages: list[Passage]) -> list[Passage]:
    """`passages` in the renditions `data` asks for, passage by passage, ids `<passage id>~<n>`: the fictional
    set's (`fictional_renditions`: phrasings, permuted sentences, full names) or a documents folder's paraphrases
    (`document_paraphrases`); `passages` themselves when it asks for none."""
    if data.phrasings == 1 and not data.permute_sentences and not data.full_names:
        return passages
    if data.name == "documents":
        renditions = document_paraphrases(data.path, data.phrasings)
    else:
        renditions = fictional_renditions(
            data.fictional_seed, data.fictional_entities, data.phrasings, data.permute_sentences, data.full_names
        )
    foreign = next((passage.id for passage in passages if passage.id not in renditions), None)
    if foreign is not None:
        raise ConfigError(
            "corpus.name",
            foreign,
            f"corpus={data.name}, the data's own articles: data.phrasings, permute_sentences and full_names rephrase"
            " those, and no other corpus's passage",
        )
    return renditions_of(passages, renditions)


def mixed_questions(data: DataConfig, texts: list[Passage]) -> list[QAExample]:
    """The question-answer pairs trained on among `texts` (`data.mixed_questions`): none, the train split's, or
    the fact questions of every article the texts come from (the fictional set's, one per fact in training
    phrasing, or a documents folder's `fact_questions.jsonl`); the first `data.max_mixed_questions`."""
    if data.mixed_questions == "none":
        return []
    if data.mixed_questions == "train":
        questions = load_qa_split(data, data.train_split)
    else:
        titles = {passage.title.replace(" ", "_") for passage in texts}
        if data.name == "documents":
            facts = document_fact_questions(data.path)
        else:
            facts = fictional_fact_questions(data.fictional_seed, data.fictional_entities)
        questions = [question for question in facts if question.article in titles]
    return questions[: data.max_mixed_questions] if data.max_mixed_questions is not None else questions


def text_pool_size(data: DataConfig, corpus: CorpusConfig) -> int:
    """Items of one pass of text training: the texts and the question-answer pairs mixed in among them."""
    texts = training_texts(data, corpus)
    return len(texts) + len(mixed_questions(data, texts))


def load_training_texts(data: DataConfig, corpus: CorpusConfig, batch_size: int, world_size: int) -> list[Passage]:
    """`training_texts`, checked as `load_training_examples` checks the questions."""
    passages = training_texts(data, corpus)
    check_fills_batches(len(passages), batch_size, world_size)
    return passages
