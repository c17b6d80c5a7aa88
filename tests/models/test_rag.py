import math

import pytest
import torch

from rag_pet.config import ModelConfig, PeftConfig, RagConfig, RetrieverConfig
from rag_pet.data.prompts import PromptEncoder
from rag_pet.data.types import Passage, QAExample
from rag_pet.models import adapt_model, build_generator
from rag_pet.models.encoder import build_encoder
from rag_pet.models.rag import RagModel, adapt_retriever, rag_sequence_nll, rag_token_nll
from rag_pet.models.rag_inputs import RagInputs

EXAMPLES = [
    QAExample("q1", "Which city hosts the tower?", ("Paris",)),
    QAExample("q2", "What colour is the sky?", ("blue",)),
]
PASSAGES = [
    [Passage("a", "Tower", "The tower stands in Paris."), Passage("b", "Sea", "The sea is wide.")],
    [Passage("c", "Sky", "The sky is blue on clear days."), Passage("d", "Grass", "Grass is green.")],
]


def test_sequence_and_token_losses_equal_hand_computed_values_for_two_documents():
    prior = torch.tensor([[0.7, 0.3]]).log()
    token_probs = torch.tensor([[[0.5, 0.25], [0.1, 0.8]]])  # p(y_t | x, z_k): K=2 documents, T=2 tokens
    mask = torch.tensor([[True, True]])
    sequence = -math.log(0.7 * 0.5 * 0.25 + 0.3 * 0.1 * 0.8)
    token = -math.log((0.7 * 0.5 + 0.3 * 0.1) * (0.7 * 0.25 + 0.3 * 0.8))
    assert rag_sequence_nll(prior, token_probs.log(), mask).item() == pytest.approx(sequence, rel=1e-6)
    assert rag_token_nll(prior, token_probs.log(), mask).item() == pytest.approx(token, rel=1e-6)
    padded = torch.cat([token_probs.log(), torch.zeros(1, 2, 1)], dim=-1)  # a padded third token changes nothing
    assert rag_token_nll(prior, padded, torch.tensor([[True, True, False]])).item() == pytest.approx(token, rel=1e-6)


def build_rag(arch: str, rag: RagConfig, peft: str = "full") -> tuple[RagModel, RagInputs]:
    torch.manual_seed(0)
    generator = build_generator(ModelConfig(source="tiny", arch=arch, hidden_size=32, num_layers=2, num_heads=4))
    model = adapt_model(generator.model, PeftConfig(method=peft, r=4, alpha=8), generator.is_seq2seq)
    retriever = adapt_retriever(build_encoder(RetrieverConfig(source="tiny", shared=False, hidden_size=32)), rag)
    prompts = PromptEncoder(generator.tokenizer, "closed_book", generator.is_seq2seq, 32, 8, passage_max_tokens=24)
    inputs = RagInputs(prompts, retriever, generator.tokenizer.pad_token_id)
    return RagModel(model, retriever, generator.is_seq2seq, rag.marginal, rag.temperature), inputs


def index_batch(model: RagModel, inputs: RagInputs, doc_tokens: bool = False) -> dict[str, torch.Tensor]:
    texts = [f"{p.title} {p.text}" for row in PASSAGES for p in row]
    with torch.no_grad():  # what a flat index built by the document tower returns
        vectors = model.retriever.encode_documents(texts).view(2, 2, -1).numpy()
    return inputs.batch(EXAMPLES, PASSAGES, vectors, torch.ones(2, 2, dtype=torch.bool).numpy(), doc_tokens)


@pytest.mark.parametrize("arch", ["llama", "t5"])
def test_forward_marginalises_the_generators_own_per_passage_likelihoods(arch):
    rag = RagConfig(k=2, marginal="sequence", temperature=0.5)
    model, inputs = build_rag(arch, rag)
    model.eval()  # no dropout: the two computations must see the same network
    output = model(**index_batch(model, inputs))
    expected = []
    for row, (example, passages) in enumerate(zip(EXAMPLES, PASSAGES, strict=True)):
        loglik = []
        for passage in passages:
            features = inputs.prompts.training_features(example)
            prompt = inputs.prompts.prompt_ids(example, passage)
            answer = inputs.prompts.answer_ids(example.answers[0])
            if arch == "t5":
                hf = model.generator(input_ids=torch.tensor([prompt]), labels=torch.tensor([answer]))
            else:
                labels = [-100] * len(prompt) + answer
                hf = model.generator(input_ids=torch.tensor([prompt + answer]), labels=torch.tensor([labels]))
            assert features  # the closed-book features still build for the same example
            loglik.append(-hf.loss.item() * len(answer))  # HF's mean token NLL, back to a sum
        prior = output.doc_log_prior[row]
        expected.append(-torch.logsumexp(prior + torch.tensor(loglik), 0).item())
    assert output.loss.item() == pytest.approx(sum(expected) / 2, rel=1e-4)


def test_gradient_reaches_the_query_tower_and_not_a_frozen_document_tower():
    model, inputs = build_rag("llama", RagConfig(k=2, query_encoder="full", doc_encoder="frozen"))
    model(**index_batch(model, inputs)).loss.backward()
    query_grads = [p.grad for p in model.retriever.query_tower.parameters() if p.requires_grad]
    assert all(g is not None for g in query_grads) and sum(g.abs().sum() for g in query_grads) > 0
    assert all(p.grad is None and not p.requires_grad for p in model.retriever.doc_tower.parameters())


def test_a_trainable_document_tower_gets_gradient_from_re_encoded_passages():
    rag = RagConfig(k=2, query_encoder="full", doc_encoder="trainable", reindex_every=10)
    model, inputs = build_rag("llama", rag)
    model(**index_batch(model, inputs, doc_tokens=True)).loss.backward()
    assert sum(p.grad.abs().sum() for p in model.retriever.doc_tower.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("marginal", ["sequence", "token"])
@pytest.mark.parametrize(("arch", "peft"), [("llama", "lora"), ("t5", "full")])
def test_loss_falls_on_a_memorisable_batch(arch, peft, marginal):
    model, inputs = build_rag(arch, RagConfig(k=2, marginal=marginal, query_encoder="full"), peft)
    batch = index_batch(model, inputs)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=3e-2 if peft == "lora" else 1e-2
    )
    losses = []
    for _ in range(40):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
