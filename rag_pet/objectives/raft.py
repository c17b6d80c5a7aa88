"""RAFT, retrieval-augmented fine-tuning (Zhang et al. 2024, "RAFT: Adapting Language Model to Domain Specific
RAG"): the generator is fine-tuned to answer from `rag.k` passages read together in one prompt, the question's gold
passage mixed among random distractor passages of the corpus, and for a fraction `1 - gold_fraction` of the
questions distractors alone, so it learns to use a passage that holds the answer and to ignore those that do not.
It answers from the top `rag.k` passages the frozen retriever finds, read the same way (`rag.reader=concatenated`).

The paper's chain-of-thought answers, written by a larger model, are left out: no such model is at hand offline,
and SQuAD's answers are short spans.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rag_pet.config import RagPetConfig
from rag_pet.errors import ConfigError
from rag_pet.objectives.base import Method
from rag_pet.objectives.closed_book import learning_rate_override
from rag_pet.objectives.generator import (
    check_generator_training,
    estimate_sample,
    refuse_init_from,
    refuse_other_articles,
    refuse_text_training,
)
from rag_pet.objectives.rag import Rag

if TYPE_CHECKING:
    from rag_pet.data.types import Passage, QAExample


@dataclass
class RaftOptions:
    """`objective_options` of RAFT: `gold_fraction`, the share of training questions whose passages hold their gold
    passage (the paper's P; it finds 0.6-0.8 best on most datasets, which is why 0.8 is the default)."""

    gold_fraction: float = 0.8

    def __post_init__(self) -> None:
        if not 0.0 <= self.gold_fraction <= 1.0:
            raise ConfigError("objective_options.gold_fraction", self.gold_fraction, "a fraction in [0, 1]")


class Raft(Rag):
    name = "raft"
    order = 2
    options_type = RaftOptions

    def check(self, config: RagPetConfig) -> None:
        refuse_init_from(config)
        refuse_text_training(config)
        refuse_other_articles(config)
        if config.rag.reader != "concatenated":
            raise ConfigError("rag.reader", config.rag.reader, "concatenated: RAFT reads its passages together")
        if config.rag.retriever_trains:
            raise ConfigError("rag.query_encoder", config.rag.query_encoder, "frozen (RAFT trains the generator)")
        if config.peft.method == "frozen":
            raise ConfigError("peft.method", "frozen", "a PET method or full: RAFT fine-tunes the generator")

    def trains(self, config: RagPetConfig) -> bool:
        return True

    def label(self, config: RagPetConfig, trained: bool) -> str:
        return f"raft+{config.peft.method}" if trained else "rag (passages read together)"

    def study_methods(self) -> list[Method]:
        return [Method("raft", ("experiment=raft", learning_rate_override("lora")), trains=True, retrieves=True)]

    def preflight(self, config: RagPetConfig) -> None:
        """Training questions with gold passages in the corpus, prompts that fit the generator, the index for
        answering afterwards."""
        from rag_pet.retrieval.live_index import ensure_index
        from rag_pet.runtime import ensure_ray
        from rag_pet.training.batching import load_training_examples

        check_generator_training(config)
        training_contexts(config, load_training_examples(config.data, config.trainer.batch_size, 1))
        _check_context(config)
        ensure_ray()
        ensure_index(config.index_source)

    def reserved_cpus(self, config: RagPetConfig) -> float:
        return 0.0  # training reads sampled passages; the index is searched only when answering afterwards

    def build_task(self, config, ctx):
        from rag_pet.training.batching import load_training_examples
        from rag_pet.training.closed_book import ClosedBookTask

        def features(generator) -> list[dict]:
            examples = load_training_examples(config.data, config.trainer.batch_size, ctx.world_size)
            prompts = _prompts(config, generator.tokenizer, generator.is_seq2seq)
            contexts = training_contexts(config, examples)
            return [prompts.passages_training_features(e, c) for e, c in zip(examples, contexts, strict=True)]

        return ClosedBookTask(
            config.model, config.peft, config.data, config.corpus, config.trainer, config.seed, ctx, features
        )

    def build_model(self, config):
        from rag_pet.training.closed_book import build_adapted_generator

        return build_adapted_generator(config.model, config.peft, config.trainer.max_steps)[0]

    def example_tokens(self, config: RagPetConfig, is_seq2seq: bool) -> float:
        """One prompt of `rag.k` passages and the answer, with the passages training samples."""
        from rag_pet.data import load_qa_split
        from rag_pet.models.generator import build_tokenizer

        prompts = _prompts(config, build_tokenizer(config.model), is_seq2seq)
        examples = load_qa_split(config.data, config.data.train_split, estimate_sample(config))
        contexts = training_contexts(config, examples)
        rows = [prompts.passages_training_features(e, c) for e, c in zip(examples, contexts, strict=True)]
        return statistics.fmean(len(row["input_ids"]) for row in rows)

    def generator_dir(self, config, model_dir):
        return model_dir


def training_contexts(config: RagPetConfig, examples: list[QAExample]) -> list[list[Passage]]:
    """Each question's `rag.k` training passages, in random order: its gold passage and `rag.k - 1` distractors for a
    share `gold_fraction` of the questions, `rag.k` distractors for the rest; distractors are drawn uniformly from
    the corpus's other passages. Seeded by `seed`, so every worker and every resumed run draws the same."""
    options: RaftOptions = OBJECTIVE.options(config)
    corpus = _corpus(config)
    if config.rag.k >= len(corpus):
        raise ConfigError("rag.k", config.rag.k, f"fewer than the {len(corpus)} passages in the corpus")
    missing = [e.id for e in examples if e.gold_passage_id not in corpus]
    if missing:
        raise ConfigError(
            "corpus", config.corpus.name, f"a corpus holding every training question's gold passage ({missing[0]!r}'s)"
        )
    ids = sorted(corpus)
    rng = random.Random(config.seed)
    contexts = []
    for example in examples:
        with_gold = rng.random() < options.gold_fraction
        wanted = config.rag.k - 1 if with_gold else config.rag.k
        others = [i for i in rng.sample(ids, min(len(ids), wanted + 1)) if i != example.gold_passage_id][:wanted]
        passages = [corpus[i] for i in others] + ([corpus[example.gold_passage_id]] if with_gold else [])
        rng.shuffle(passages)
        contexts.append(passages)
    return contexts


def _corpus(config: RagPetConfig) -> dict[str, Passage]:
    from rag_pet.retrieval.corpus import load_corpus

    return {passage.id: passage for passage in load_corpus(config.corpus)}


def _prompts(config: RagPetConfig, tokenizer, is_seq2seq: bool):
    from rag_pet.models.rag_inputs import rag_prompt_encoder

    return rag_prompt_encoder(config.data, config.rag, tokenizer, is_seq2seq)


def _check_context(config: RagPetConfig) -> None:
    """Refuse `rag.k` passages of `rag.passage_max_tokens` that cannot fit the generator's context together."""
    from rag_pet.models.generator import build_skeleton, build_tokenizer
    from rag_pet.training.rag_task import generator_context_length

    skeleton, is_seq2seq = build_skeleton(config.model)
    context = generator_context_length(skeleton.config)
    if context is None or not config.rag.truncate_passages:
        return
    overhead = _prompts(config, build_tokenizer(config.model), is_seq2seq).passages_overhead_tokens(config.rag.k)
    if config.rag.k * config.rag.passage_max_tokens + overhead > context:
        most = (context - overhead) // config.rag.k
        raise ConfigError(
            "rag.passage_max_tokens",
            config.rag.passage_max_tokens,
            f"at most {most}: {config.rag.k} passages read together must fit the generator's {context}-token context",
        )


OBJECTIVE = Raft()
