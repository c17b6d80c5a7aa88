"""The answer NLL metric: the model's own loss closed-book, the RAG training marginal over retrieved passages."""

import math

import pytest
import torch

from rag_pet.config import ModelConfig, RagConfig
from rag_pet.data.prompts import PromptEncoder, collate_training
from rag_pet.data.types import QAExample
from rag_pet.evaluation.answer_nll import AnswerScorer
from rag_pet.inference.answering import RetrievedPassage
from rag_pet.models import build_generator

EXAMPLES = [
    QAExample("q1", "Which city hosts the tower?", ("Paris",)),
    QAExample("q2", "What colour is the sky on a clear day?", ("a deep blue",)),
    QAExample("q3", "Who?", ("nobody at all",)),
]
PASSAGES = [
    [RetrievedPassage("a", "Tower", "The tower stands in Paris.", 0.9), RetrievedPassage("b", "Sea", "Wide.", 0.1)],
    [RetrievedPassage("c", "Sky", "The sky is blue.", 0.2), RetrievedPassage("d", "Grass", "Green.", 0.4)],
    [RetrievedPassage("e", "Who", "Somebody.", 0.5), RetrievedPassage("f", "What", "Something.", 0.5)],
]


@pytest.fixture(scope="module", params=["llama", "t5"])
def generator_and_prompts(request):
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", arch=request.param, hidden_size=32, num_layers=2))
    prompts = PromptEncoder(generator.tokenizer, "closed_book", generator.is_seq2seq, 48, 8, passage_max_tokens=24)
    return generator, prompts


def test_closed_book_nll_is_the_models_own_mean_loss_on_the_answer_tokens(generator_and_prompts):
    generator, prompts = generator_and_prompts
    scorer = AnswerScorer(generator, prompts, None, torch.device("cpu"), batch_size=2)  # batches of unequal lengths
    nlls = scorer(EXAMPLES)
    generator.model.eval()
    for example, nll in zip(EXAMPLES, nlls, strict=True):
        batch = collate_training([prompts.training_features(example)], generator.tokenizer.pad_token_id)
        with torch.no_grad():
            expected = generator.model(**batch).loss.item()  # transformers' mean cross-entropy over labelled tokens
        assert nll == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("marginal", ["sequence", "token"])
def test_rag_nll_marginalises_the_per_passage_likelihoods_with_the_retrieval_prior(generator_and_prompts, marginal):
    generator, prompts = generator_and_prompts
    rag = RagConfig(k=2, marginal=marginal, temperature=0.5)
    nlls = AnswerScorer(generator, prompts, rag, torch.device("cpu"))(EXAMPLES, PASSAGES)
    single = AnswerScorer(generator, prompts, None, torch.device("cpu"))
    for example, found, nll in zip(EXAMPLES, PASSAGES, nlls, strict=True):
        prior = torch.softmax(torch.tensor([hit.score for hit in found]) / rag.temperature, dim=0).tolist()
        # log p(y_t | x, z_k, y_<t), one row per passage, each scored alone with the passage in the prompt
        rows = [_token_logprobs(single, prompts, example, hit) for hit in found]
        if marginal == "sequence":  # p(y|x) = sum_k p(z_k|x) prod_t p(y_t|x,z_k,y_<t)
            expected = -math.log(sum(p * math.exp(sum(row)) for p, row in zip(prior, rows, strict=True)))
        else:  # p(y|x) = prod_t sum_k p(z_k|x) p(y_t|x,z_k,y_<t)
            expected = -sum(
                math.log(sum(p * math.exp(row[t]) for p, row in zip(prior, rows, strict=True)))
                for t in range(len(rows[0]))
            )
        assert nll == pytest.approx(expected / len(rows[0]), rel=1e-4)


def test_one_passage_with_all_the_prior_gives_the_closed_book_nll_of_that_prompt(generator_and_prompts):
    generator, prompts = generator_and_prompts
    rag = RagConfig(k=1, temperature=0.05)
    nlls = AnswerScorer(generator, prompts, rag, torch.device("cpu"))(EXAMPLES, [row[:1] for row in PASSAGES])
    single = AnswerScorer(generator, prompts, None, torch.device("cpu"))
    for example, found, nll in zip(EXAMPLES, PASSAGES, nlls, strict=True):
        assert nll == pytest.approx(_nll_with_passage(single, prompts, example, found[0]), rel=1e-4)


def _features(prompts: PromptEncoder, example: QAExample, hit) -> list[dict]:
    return [{"prompt": prompts.prompt_ids(example, hit.passage), "answer": prompts.answer_ids(example.answers[0])}]


def _nll_with_passage(scorer: AnswerScorer, prompts: PromptEncoder, example: QAExample, hit) -> float:
    """Mean token NLL of the answer with the passage in the prompt, through the closed-book path."""
    return scorer._closed_book(_features(prompts, example, hit))[0]


def _token_logprobs(scorer: AnswerScorer, prompts: PromptEncoder, example: QAExample, hit) -> list[float]:
    logprobs, mask = scorer._token_logprobs(_features(prompts, example, hit))
    return logprobs[0][mask[0]].tolist()


@pytest.mark.parametrize("method", ["prompt", "ptuning", "prefix", "lora"])
def test_adapted_models_nll_is_their_own_loss_even_where_peft_prepends_virtual_tokens(method):
    """Prompt tuning and p-tuning put virtual tokens before the input, which moves every position: the answer NLL
    must still be the adapted model's own loss on the answer."""
    from rag_pet.config import PeftConfig
    from rag_pet.models import adapt_model
    from rag_pet.models.generator import Generator

    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", arch="llama", hidden_size=32, num_layers=2))
    model = adapt_model(generator.model, PeftConfig(method=method, r=4, alpha=8, num_virtual_tokens=5), False)
    adapted = Generator(model, generator.tokenizer, generator.is_seq2seq)
    prompts = PromptEncoder(generator.tokenizer, "closed_book", False, 48, 8)
    nlls = AnswerScorer(adapted, prompts, None, torch.device("cpu"), batch_size=3)(EXAMPLES)
    model.eval()
    for example, nll in zip(EXAMPLES, nlls, strict=True):
        batch = collate_training([prompts.training_features(example)], generator.tokenizer.pad_token_id)
        with torch.no_grad():
            expected = model(**batch).loss.item()  # peft extends the labels by the virtual tokens itself
        assert nll == pytest.approx(expected, rel=1e-4)
