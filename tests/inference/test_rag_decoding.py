"""RAG decoding: with one passage every strategy reduces to plain decoding; a passage with prior 0 is ignored."""

import pytest
import torch

from rag_pet.config import ModelConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import Passage, QAExample
from rag_pet.inference.generation import generate_answers
from rag_pet.inference.rag_decoding import MarginalizeOverDocuments, answer_log_likelihoods, rag_generate
from rag_pet.models import build_generator

STRATEGIES = ["token_greedy", "token_beam", "sequence_fast", "sequence_thorough"]
EXAMPLES = [QAExample("q1", "Where is the tower?", ("Paris",)), QAExample("q2", "What colour is the sky?", ("blue",))]
PASSAGES = [Passage("a", "Tower", "The tower stands in Paris."), Passage("b", "Sky", "The sky is blue today.")]


@pytest.fixture(scope="module", params=["llama", "t5"])
def tiny(request):
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", arch=request.param, hidden_size=32, num_heads=4))
    generator.model.eval()
    prompts = PromptEncoder(generator.tokenizer, "closed_book", generator.is_seq2seq, 32, 8, passage_max_tokens=16)
    return generator, prompts


def test_the_marginal_of_identical_rows_is_each_rows_distribution():
    scores = torch.randn(4, 7)  # B=2 questions, K=2 passages, identical rows per question
    scores[1], scores[3] = scores[0], scores[2]
    prior = torch.tensor([[0.3, 0.7], [0.5, 0.5]]).log()
    marginal = MarginalizeOverDocuments(prior)(torch.zeros(4, 1, dtype=torch.long), scores)
    torch.testing.assert_close(marginal, torch.log_softmax(scores, -1))


@pytest.mark.parametrize("decoding", STRATEGIES)
def test_one_passage_reduces_every_strategy_to_plain_greedy_decoding(tiny, decoding):
    generator, prompts = tiny
    rows = [prompts.prompt_ids(e, p) for e, p in zip(EXAMPLES, PASSAGES, strict=True)]
    plain = generate_answers(
        generator.model, generator.tokenizer, rows, generator.is_seq2seq, 8, 6, torch.device("cpu")
    )
    prior = torch.zeros(2, 1)
    beams = 1 if decoding == "token_beam" else 4  # beam search of width 1 is greedy
    found = rag_generate(generator.model, generator.tokenizer, rows, prior, generator.is_seq2seq, decoding, 6, beams)
    assert found == plain


@pytest.mark.parametrize("decoding", STRATEGIES)
def test_a_passage_with_zero_prior_does_not_change_the_answer(tiny, decoding):
    generator, prompts = tiny
    example = EXAMPLES[0]
    alone = [prompts.prompt_ids(example, PASSAGES[0])]
    both = [prompts.prompt_ids(example, PASSAGES[0]), prompts.prompt_ids(example, PASSAGES[1])]
    args = (generator.model, generator.tokenizer)
    expected = rag_generate(*args, alone, torch.zeros(1, 1), generator.is_seq2seq, decoding, 6, 2)
    prior = torch.tensor([[0.0, float("-inf")]])
    assert rag_generate(*args, both, prior, generator.is_seq2seq, decoding, 6, 2) == expected


def test_teacher_forced_likelihood_matches_the_models_own_loss(tiny):
    generator, prompts = tiny
    prompt, answer = prompts.prompt_ids(EXAMPLES[0], PASSAGES[0]), prompts.answer_ids("Paris")
    loglik = answer_log_likelihoods(
        generator.model, generator.tokenizer.pad_token_id, [prompt], [answer], generator.is_seq2seq
    )
    if generator.is_seq2seq:
        loss = generator.model(input_ids=torch.tensor([prompt]), labels=torch.tensor([answer])).loss
    else:
        labels = [-100] * len(prompt) + answer
        loss = generator.model(input_ids=torch.tensor([prompt + answer]), labels=torch.tensor([labels])).loss
    assert loglik.item() == pytest.approx(-loss.item() * len(answer), rel=1e-4)


@pytest.mark.parametrize("decoding", STRATEGIES)
def test_questions_decoded_as_one_batch_get_the_answers_they_get_one_at_a_time(tiny, decoding):
    generator, prompts = tiny
    examples = [*EXAMPLES, QAExample("q3", "Which of the two is older, and by how many years?", ("x",))]
    passages = [*PASSAGES, Passage("c", "", "A short one.")]
    rows = [[prompts.prompt_ids(e, passages[(i + j) % 3]) for j in range(2)] for i, e in enumerate(examples)]
    prior = torch.log_softmax(torch.tensor([[0.2, 0.1], [1.0, -1.0], [0.0, 0.3]]), dim=-1)
    args = (generator.model, generator.tokenizer)
    one_at_a_time = [
        rag_generate(*args, rows[b], prior[b : b + 1], generator.is_seq2seq, decoding, 6, 2)[0] for b in range(3)
    ]
    batched = rag_generate(*args, [row for pair in rows for row in pair], prior, generator.is_seq2seq, decoding, 6, 2)
    assert batched == one_at_a_time
