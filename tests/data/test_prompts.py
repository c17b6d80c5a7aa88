import pytest
import torch

from rag_pet.config import ModelConfig
from rag_pet.data import QAExample
from rag_pet.data.prompts import IGNORE_INDEX, PromptEncoder, collate_prompts, collate_training
from rag_pet.errors import ConfigError
from rag_pet.models import build_tokenizer

EXAMPLE = QAExample("q1", "Which river flows through Paris?", ("the Seine", "Seine"))


def encoder(is_seq2seq: bool, max_prompt_tokens: int = 64) -> PromptEncoder:
    return PromptEncoder(build_tokenizer(ModelConfig(source="tiny")), "closed_book", is_seq2seq, max_prompt_tokens, 8)


def test_causal_features_mask_the_prompt_out_of_the_labels():
    enc = encoder(is_seq2seq=False)
    prompt, answer = enc.prompt_ids(EXAMPLE), enc.answer_ids("the Seine")
    features = enc.training_features(EXAMPLE)
    assert features["input_ids"] == prompt + answer
    assert features["labels"] == [IGNORE_INDEX] * len(prompt) + answer
    assert answer[-1] == enc.tokenizer.eos_token_id
    assert enc.tokenizer.decode(answer[:-1]) == "the seine"  # MiniLM's vocabulary is lower-case


def test_seq2seq_features_keep_prompt_and_answer_apart():
    enc = encoder(is_seq2seq=True)
    features = enc.training_features(EXAMPLE)
    assert features["labels"] == enc.answer_ids("the Seine")
    assert features["input_ids"][-1] == enc.tokenizer.eos_token_id


def test_long_prompts_keep_their_end():
    enc = encoder(is_seq2seq=False, max_prompt_tokens=6)
    ids = enc.prompt_ids(EXAMPLE)
    assert len(ids) == 6 and enc.tokenizer.decode(ids).endswith("answer :")


def test_collators_pad_on_the_right_side():
    batch = collate_training([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}], 0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    prompts = collate_prompts([[5, 6, 7], [8]], 0, left=True)
    assert torch.equal(prompts["input_ids"], torch.tensor([[5, 6, 7], [0, 0, 8]]))
    assert prompts["attention_mask"].tolist() == [[1, 1, 1], [0, 0, 1]]


def test_chat_template_wraps_the_prompt_in_the_instruct_models_user_turn():
    tokenizer = build_tokenizer(ModelConfig(source="smollm2"))
    encoder = PromptEncoder(tokenizer, "closed_book", False, 64, 8, chat=True)
    example = QAExample("q", "Who wrote Hamlet?", ("Shakespeare",))
    text = tokenizer.decode(encoder.prompt_ids(example))
    assert text.startswith("<|im_start|>") and "Question: Who wrote Hamlet?\nAnswer:<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(encoder.answer_ids("Shakespeare")) == "Shakespeare<|im_end|>"


def test_chat_template_is_refused_for_a_tokenizer_without_one():
    with pytest.raises(ConfigError, match="data.chat_template"):
        PromptEncoder(build_tokenizer(ModelConfig(source="tiny")), "closed_book", False, 64, 8, chat=True)


@pytest.mark.parametrize("is_seq2seq", [False, True])
def test_text_features_make_every_token_a_target_up_to_the_limit(is_seq2seq):
    enc = encoder(is_seq2seq=is_seq2seq)
    text = "The Seine flows through Paris and into the English Channel at Le Havre."
    features = enc.text_features(text, max_tokens=6)
    body = enc.tokenizer(text, add_special_tokens=False).input_ids[:6]
    if is_seq2seq:
        assert features == {"input_ids": body, "labels": body + [enc.tokenizer.eos_token_id]}
    else:
        assert features["input_ids"] == features["labels"] and features["input_ids"][-6:] == body
