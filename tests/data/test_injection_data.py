"""Knowledge injection's data (Allen-Zhu & Li 2023; Mecklenburg et al. 2024): paraphrased, permuted and full-name
renditions of the fictional articles, held-out question phrasings, fact questions, and text and questions mixed in
one training pool."""

import itertools
import re
import string
from dataclasses import replace

import pytest

from rag_pet.config import CorpusConfig, DataConfig, ModelConfig
from rag_pet.data.datasets import load_qa_split
from rag_pet.data.fictional import fictional_articles, fictional_fact_questions, fictional_renditions, fictional_written
from rag_pet.data.fictional_text import (
    COMPANY_QUESTIONS,
    PERSON_QUESTIONS,
    PHRASINGS,
    PRIZE_QUESTIONS,
    TOWN_QUESTIONS,
)
from rag_pet.data.prompts import IGNORE_INDEX, PromptEncoder, collate_training
from rag_pet.data.squad import EVALUATION_SPLITS
from rag_pet.errors import ConfigError
from rag_pet.models.generator import build_tokenizer
from rag_pet.training.batching import distributed_loader, mixed_questions, training_texts
from rag_pet.training.closed_book import grouping_lengths, training_features
from tests.training.test_batching import mega_batches

SEED, ENTITIES = 0, 30
DATA = DataConfig(name="fictional", fictional_entities=ENTITIES, validation_articles=10, test_articles=5)
QUESTIONS = (*TOWN_QUESTIONS, *COMPANY_QUESTIONS, *PERSON_QUESTIONS, *PRIZE_QUESTIONS)


def sentences(text: str) -> list[str]:
    return re.split(r"(?<=\.) (?=[A-Z])", text)


def paragraph_facts(written, index: int) -> set[str]:
    """The slot values the canonical paragraph states (its own entity's name aside)."""
    context = written.article["paragraphs"][index]["context"]
    return {value for slot, value in written.values.items() if value in context and value != written.name}


def test_the_k_phrasings_of_a_paragraph_are_distinct_and_each_states_its_facts():
    renditions = fictional_renditions(SEED, ENTITIES, PHRASINGS, permute=False, full_names=False)
    for written in fictional_written(SEED, ENTITIES):
        for index, paragraph in enumerate(written.article["paragraphs"]):
            texts = renditions[f"{written.article['title']}#{index}"]
            assert len(set(texts)) == PHRASINGS
            assert texts[0] == paragraph["context"]  # the first phrasing is the indexed paragraph
            for text in texts:
                assert {value for value in paragraph_facts(written, index) if value in text} == paragraph_facts(
                    written, index
                )
    for written in fictional_written(SEED, ENTITIES):  # every fact sentence has its phrasings, all different
        for paragraph in written.paragraphs:
            for sentence in paragraph[:-1]:
                assert len(set(sentence)) == PHRASINGS


def test_with_full_names_every_sentence_names_its_entity_in_full_and_permuting_keeps_the_sentences():
    plain = fictional_renditions(SEED, ENTITIES, 3, permute=False, full_names=True)
    permuted = fictional_renditions(SEED, ENTITIES, 3, permute=True, full_names=True)
    moved = 0
    for written in fictional_written(SEED, ENTITIES):
        for index in range(len(written.paragraphs)):
            identifier = f"{written.article['title']}#{index}"
            for text, shuffled in zip(plain[identifier], permuted[identifier], strict=True):
                for sentence in sentences(text):
                    assert written.name in sentence, sentence
                assert sorted(sentences(text)) == sorted(sentences(shuffled))
                moved += sentences(text) != sentences(shuffled)
    assert moved > 0
    canonical = fictional_renditions(SEED, ENTITIES, 1, permute=False, full_names=False)
    assert any(  # without full names, the canonical text refers back by pronoun or family name
        written.name not in sentence
        for written in fictional_written(SEED, ENTITIES)
        for sentence in sentences(canonical[f"{written.article['title']}#0"][0])
    )


def test_evaluation_phrasings_are_disjoint_from_training_phrasings():
    skeleton = {template: re.sub(r"\{\w+\}", "{}", template) for question in QUESTIONS for template in question[:2]}
    training = {skeleton[question[0]] for question in QUESTIONS}
    held_out = {skeleton[question[1]] for question in QUESTIONS}
    assert not training & held_out
    data = replace(DATA, heldout_phrasings=True)
    trained = {example.question for example in load_qa_split(data, "train")}
    written = {
        qa["id"]: qa for article in fictional_articles(SEED, ENTITIES) for p in article["paragraphs"] for qa in p["qas"]
    }
    for split in EVALUATION_SPLITS:
        examples = load_qa_split(data, split)
        assert examples or split == "dev"
        for example in examples:
            assert example.question == written[example.id]["question_heldout"]
            assert example.question not in trained
    for example in load_qa_split(data, "train"):
        assert example.question == written[example.id]["question"]


def test_fact_questions_cover_every_fact_of_every_article_in_training_phrasings():
    facts = fictional_fact_questions(SEED, ENTITIES)
    training = {question[0] for question in QUESTIONS}
    for written in fictional_written(SEED, ENTITIES):
        own = [fact for fact in facts if fact.article == written.article["title"]]
        assert {fact.answers[0] for fact in own} == {written.values[slot] for _, _, slot in written.questions}
        for fact in own:
            context = written.article["paragraphs"][int(fact.gold_passage_id.split("#")[1])]["context"]
            assert fact.answers[0] in context
    asked = {qa["question"] for a in fictional_articles(SEED, ENTITIES) for p in a["paragraphs"] for qa in p["qas"]}
    assert asked <= {fact.question for fact in facts}
    assert all(any(_fits(t, fact.question) for t in training) for fact in facts)


def _fits(template: str, question: str) -> bool:
    pattern = "".join(re.escape(literal) + ("(.+)" if slot else "") for literal, slot, _, _ in _parse(template))
    return re.fullmatch(pattern, question) is not None


def _parse(template: str):
    return string.Formatter().parse(template)


def test_injection_settings_are_refused_where_the_data_has_no_renditions():
    with pytest.raises(ConfigError, match="data.phrasings"):
        DataConfig(name="squad", phrasings=2)
    with pytest.raises(ConfigError, match="data.phrasings"):
        DataConfig(name="fictional", phrasings=PHRASINGS + 1)
    with pytest.raises(ConfigError, match="data.heldout_phrasings"):
        DataConfig(name="squad", heldout_phrasings=True)
    with pytest.raises(ConfigError, match="data.mixed_questions"):
        DataConfig(name="fictional", mixed_questions="facts")  # train_on=questions has no texts to mix into
    with pytest.raises(ConfigError, match="corpus.name"):  # SQuAD's passages have no fictional renditions
        training_texts(replace(DATA, train_on="corpus", phrasings=2), CorpusConfig(name="squad"))


def test_mixed_training_interleaves_text_and_question_batches_in_every_pass():
    data = replace(DATA, train_on="corpus", phrasings=2, mixed_questions="facts", max_text_tokens=64)
    corpus = CorpusConfig(name="fictional", fictional_entities=ENTITIES)
    texts = training_texts(data, corpus)
    questions = mixed_questions(data, texts)
    assert len(texts) == 2 * len(training_texts(replace(data, phrasings=1), corpus)) and questions
    encoder = PromptEncoder.from_config(build_tokenizer(ModelConfig(source="tiny")), data, is_seq2seq=False)
    features = training_features(encoder, data, corpus, batch_size=8, world_size=1)
    assert len(features) == len(texts) + len(questions)
    lengths = grouping_lengths(data, features)
    loader, sampler = distributed_loader(
        features, 8, 0, 0, 1, lambda rows: collate_training(rows, pad_token_id=0), lengths=lengths
    )
    for epoch in range(2):
        sampler.set_epoch(epoch)
        kinds = []  # per batch: "q" (every row a question: its prompt is masked out of the labels), "t" or "mixed"
        for batch in loader:
            questions_in = int((batch["labels"][:, 1] == IGNORE_INDEX).sum())
            kinds.append("q" if questions_in == len(batch["labels"]) else "t" if questions_in == 0 else "mixed")
        assert kinds.count("mixed") <= mega_batches(len(features), 8), kinds  # one at most where two meet
        third = len(kinds) // 3
        for part in (kinds[:third], kinds[third : 2 * third], kinds[2 * third :]):
            assert {"q", "t"} <= set(part), kinds  # texts and questions alternate through the pass
        switches = sum(a != b for a, b in itertools.pairwise(kinds))
        assert switches >= len(kinds) // 4, kinds  # not long runs of one kind
