"""The one name-cleaning function behind folders, cell ids, W&B artifacts and adapter slots."""

import pytest

from rag_pet.naming import safe_name


@pytest.mark.parametrize(
    ("text", "kwargs", "expected"),
    [
        ("rag+lora", {}, "rag_lora"),
        ("retriever (base)", {"keep": "."}, "retriever_base"),
        ("lora@validation_seen", {"keep": "."}, "lora_validation_seen"),
        ("IVF256,Flat", {}, "IVF256_Flat"),
        ("default.rag_lora-seed0", {"keep": "-"}, "default_rag_lora-seed0"),
        ("study/run: 1", {"keep": ".-", "fill": "-"}, "study-run-1"),
        ("+++", {"empty": "eval"}, "eval"),
    ],
)
def test_safe_name(text, kwargs, expected):
    assert safe_name(text, **kwargs) == expected
