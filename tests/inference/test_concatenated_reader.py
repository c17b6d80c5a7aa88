"""The concatenated reader (`rag.reader=concatenated`): all k passages in one prompt, in retrieval order, each cut
to `rag.passage_max_tokens`; greedy answers from that prompt and the answer NLL given it."""

import pytest
import torch

from rag_pet.config import ModelConfig, RagConfig
from rag_pet.data.prompts import IGNORE_INDEX, PromptEncoder, passage_prompt_text
from rag_pet.data.types import QAExample
from rag_pet.errors import ConfigError
from rag_pet.evaluation.answer_nll import AnswerScorer
from rag_pet.inference import answering
from rag_pet.inference.answering import Answerer, RetrievedPassage
from rag_pet.models import build_generator
from rag_pet.models.rag_inputs import rag_prompt_encoder
from tests.conftest import compose_config

CPU = torch.device("cpu")
EXAMPLES = [
    QAExample("q1", "Which city hosts the old tower?", ("Paris",)),
    QAExample("q2", "What colour is the sky on a clear day?", ("a deep blue",)),
    QAExample("q3", "Who?", ("nobody at all",)),
]
PASSAGES = [
    RetrievedPassage("a", "Tower", "The tower stands in Paris, by the river, since the old days of the city.", 0.9),
    RetrievedPassage("b", "Sky", "The sky is blue today over the city and the hills beyond it.", 0.4),
    RetrievedPassage("c", "Bridge", "The bridge crosses the river twice before the sea.", 0.1),
]
CUT = 6  # passage_max_tokens: shorter than every passage above


@pytest.fixture(scope="module")
def config():
    return compose_config(["debug=tiny", "rag.reader=concatenated", "rag.k=3", f"rag.passage_max_tokens={CUT}"])


@pytest.fixture(scope="module")
def generator(config):
    return build_generator(config.model)


@pytest.fixture(scope="module")
def answerer(config, generator):
    prompts = rag_prompt_encoder(config.data, config.rag, generator.tokenizer, generator.is_seq2seq)
    return Answerer(generator, prompts, config.rag, CPU, config.eval.precision)


def _find(ids: list[int], part: list[int], start: int = 0) -> int:
    """Where `part` first occurs in `ids` at or after `start`; -1 where it does not."""
    return next((i for i in range(start, len(ids) - len(part) + 1) if ids[i : i + len(part)] == part), -1)


def _tokens(prompts: PromptEncoder, text: str) -> list[int]:
    return prompts.tokenizer(text, add_special_tokens=False).input_ids


def _body(prompts: PromptEncoder, hit: RetrievedPassage) -> list[int]:
    """A passage's tokens as a prompt reads them, uncut."""
    return _tokens(prompts, " " + passage_prompt_text(hit.passage))


def test_the_prompt_holds_every_passage_cut_in_retrieval_order_then_the_question(answerer):
    prompts, example = answerer.prompts, EXAMPLES[0]
    ids = prompts.passages_prompt_ids(example, [hit.passage for hit in PASSAGES])
    at = 0
    for hit in PASSAGES:
        body = _body(prompts, hit)
        assert len(body) > CUT
        found = _find(ids, body[:CUT], at)
        assert found >= at, hit.id
        assert ids[found : found + CUT + 1] != body[: CUT + 1]  # cut after its first CUT tokens
        at = found + CUT
    question = _tokens(prompts, f"\nQuestion: {example.question}\nAnswer:")
    assert ids[-len(question) :] == question and _find(ids, question) >= at

    uncut = PromptEncoder.from_config(prompts.tokenizer, compose_config(["debug=tiny"]).data, prompts.is_seq2seq)
    whole = uncut.passages_prompt_ids(example, [hit.passage for hit in PASSAGES])
    assert len(whole) - len(ids) == sum(len(_body(prompts, hit)) - CUT for hit in PASSAGES)
    assert len(ids) + len(prompts.answer_ids(example.answers[0])) <= len(PASSAGES) * CUT + (
        prompts.passages_overhead_tokens(len(PASSAGES))
    )


@pytest.mark.parametrize("is_seq2seq", [False, True])
def test_training_features_mask_the_multi_passage_prompt_out_of_the_loss(answerer, is_seq2seq):
    prompts = PromptEncoder(answerer.prompts.tokenizer, "closed_book", is_seq2seq, 48, 8, passage_max_tokens=CUT)
    example, passages = EXAMPLES[1], [hit.passage for hit in PASSAGES]
    prompt, answer = prompts.passages_prompt_ids(example, passages), prompts.answer_ids(example.answers[0])
    features = prompts.passages_training_features(example, passages)
    if is_seq2seq:
        assert features == {"input_ids": prompt, "labels": answer} and prompt[-1] == prompts.tokenizer.eos_token_id
    else:
        assert features == {"input_ids": prompt + answer, "labels": [IGNORE_INDEX] * len(prompt) + answer}


def test_batched_answers_equal_answers_one_at_a_time_in_fp32(answerer):
    questions = [e.question for e in EXAMPLES]
    passages = [PASSAGES, PASSAGES[::-1], PASSAGES[:2]]  # one question with fewer passages: a group of its own
    batched = answerer.answer(questions, passages, 6)
    with answerer.answering_alone() as answer_alone:
        alone = [answer_alone(q, found, 6) for q, found in zip(questions, passages, strict=True)]
    assert [answer for answer, _ in alone] == batched
    assert all(1 <= clock.tokens <= 6 and clock.first_token_s > 0 for _, clock in alone)


def test_each_question_is_answered_from_its_one_prompt_whatever_rag_decoding_says(answerer, monkeypatch):
    read: list[list[int]] = []
    generate = answering.generate_answers

    def recording(model, tokenizer, prompts, *args):
        read.extend(prompts)
        return generate(model, tokenizer, prompts, *args)

    monkeypatch.setattr(answering, "generate_answers", recording)
    questions, passages = [EXAMPLES[0].question] * 2, [PASSAGES, PASSAGES[::-1]]
    answers = answerer.answer(questions, passages, 6)
    expected = [answerer.prompts.passages_prompt_ids(EXAMPLES[0], [h.passage for h in found]) for found in passages]
    assert read == expected and read[0] != read[1]  # other passages (here: their order), another prompt
    beam = Answerer(answerer.generator, answerer.prompts, RagConfig(reader="concatenated", decoding="token_beam"), CPU)
    assert beam.answer(questions, passages, 6) == answers


@pytest.fixture(scope="module", params=["llama", "t5"])
def scorer(request):
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", arch=request.param, hidden_size=32, num_layers=2))
    prompts = PromptEncoder(generator.tokenizer, "closed_book", generator.is_seq2seq, 48, 8, passage_max_tokens=CUT)
    return AnswerScorer(generator, prompts, RagConfig(reader="concatenated"), CPU, batch_size=2)


def _hand_nll(scorer: AnswerScorer, example: QAExample, passages: list[RetrievedPassage]) -> float:
    """-log p(answer | multi-passage prompt) / |answer|, from the model's logits on the unpadded sequence."""
    generator, prompts = scorer.generator, scorer.prompts
    prompt = torch.tensor([prompts.passages_prompt_ids(example, [hit.passage for hit in passages])])
    answer = torch.tensor([prompts.answer_ids(example.answers[0])])
    generator.model.eval()
    with torch.no_grad():
        if generator.is_seq2seq:
            logits = generator.model(input_ids=prompt, labels=answer).logits[0]
        else:
            logits = generator.model(input_ids=torch.cat([prompt, answer], 1)).logits[0, prompt.shape[1] - 1 : -1]
    logprobs = torch.log_softmax(logits.float(), -1).gather(1, answer[0, :, None])
    return -logprobs.mean().item()


def test_the_nll_is_the_teacher_forced_nll_of_the_answer_given_all_passages_at_once(scorer):
    passages = [PASSAGES, PASSAGES[1:], PASSAGES[::-1]]  # batches of unequal prompt lengths
    nlls = scorer(EXAMPLES, passages)
    for example, found, nll in zip(EXAMPLES, passages, nlls, strict=True):
        assert nll == pytest.approx(_hand_nll(scorer, example, found), rel=1e-4)
    assert scorer(EXAMPLES[:1], [PASSAGES[:1]]) != scorer(EXAMPLES[:1], [PASSAGES[1:2]])


def test_an_unknown_reader_is_refused_naming_the_field_and_the_choices():
    with pytest.raises(ConfigError, match=r"rag\.reader='bogus'.*marginal, concatenated"):
        compose_config(["debug=tiny", "rag.reader=bogus"])
