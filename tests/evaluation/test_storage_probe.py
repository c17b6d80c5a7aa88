"""The storage probe: a model trained to memorise a text completes its facts; the same model untrained does not."""

import torch

from rag_pet.config import DataConfig, ModelConfig
from rag_pet.data.prompts import PromptEncoder, collate_training
from rag_pet.data.types import Passage, QAExample
from rag_pet.evaluation.storage_probe import completes, probe_prefix, storage_probe
from rag_pet.models import build_generator

PASSAGES = {
    "a#0": Passage("a#0", "brovtal", "brovtal is a town in the quenmir region and it was founded in 1642 by farmers ."),
    "b#0": Passage("b#0", "kelvash", "kelvash makes steam pumps and employs 312 people in the town of drosk ."),
    "c#0": Passage("c#0", "marit_velsorn", "marit velsorn is a clockmaker who was born in tavrun ."),
}
EXAMPLES = [
    QAExample("1", "?", ("quenmir",), "a#0", "brovtal"),
    QAExample("2", "?", ("1642",), "a#0", "brovtal"),
    QAExample("3", "?", ("312",), "b#0", "kelvash"),
    QAExample("4", "?", ("drosk",), "b#0", "kelvash"),
    QAExample("5", "?", ("tavrun",), "c#0", "marit_velsorn"),
    QAExample("6", "?", ("clockmaker",), "c#0", "marit_velsorn"),
]


def memorised(generator, steps: int = 120) -> None:
    """Train the generator on the passages as text (as a knowledge cell reads them) until it recites them."""
    encoder = PromptEncoder.from_config(generator.tokenizer, DataConfig(), generator.is_seq2seq)
    rows = [encoder.text_features(passage.text, 64) for passage in PASSAGES.values()]
    batch = collate_training(rows, pad_token_id=generator.tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(generator.model.parameters(), lr=1e-2)
    generator.model.train()
    for _ in range(steps):
        loss = generator.model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def test_a_model_trained_on_the_text_completes_its_facts_and_an_untrained_one_does_not():
    config = ModelConfig(source="tiny", hidden_size=64, num_layers=2, num_heads=4)
    untrained = build_generator(config)
    cpu = torch.device("cpu")
    before = storage_probe(untrained, EXAMPLES, PASSAGES, cpu, max_new_tokens=4)
    trained = build_generator(config)
    memorised(trained)
    after = storage_probe(trained, EXAMPLES, PASSAGES, cpu, max_new_tokens=4)
    assert sum(before) <= 1 and sum(after) >= 5, (before, after)


def test_the_probe_reads_the_passage_up_to_the_answer_and_checks_whole_words():
    assert probe_prefix(EXAMPLES[0], PASSAGES) == "brovtal is a town in the"
    assert probe_prefix(QAExample("7", "?", ("brovtal",), "a#0"), PASSAGES) is None  # nothing comes before it
    assert probe_prefix(QAExample("8", "?", ("absent",), "a#0"), PASSAGES) is None
    untitled = QAExample("9", "?", ("quenmir",), "a#0", "zzz")
    assert probe_prefix(untitled, PASSAGES) is None  # the text before the answer names nothing of its article
    assert completes("Quenmir region, and", "quenmir") == 1.0
    assert completes("1642", "16") == 0.0 and completes("the", "") == 0.0
