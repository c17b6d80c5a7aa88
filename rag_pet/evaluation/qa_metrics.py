"""SQuAD v1.1 exact match and F1, with the official evaluation script's answer normalisation."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (as the official script)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1(prediction: str, truth: str) -> float:
    """Token-overlap F1 of the normalised strings."""
    pred_tokens, truth_tokens = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def best_over_answers(metric, prediction: str, answers: Sequence[str]) -> float:
    """The metric against the closest of several acceptable answers."""
    return max(metric(prediction, answer) for answer in answers)


def qa_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean EM and F1 in [0, 1] over examples."""
    if len(predictions) != len(answers) or not predictions:
        raise ValueError(f"need as many predictions as answer lists (>0), got {len(predictions)} and {len(answers)}")
    em = sum(best_over_answers(exact_match, p, a) for p, a in zip(predictions, answers, strict=True))
    f = sum(best_over_answers(f1, p, a) for p, a in zip(predictions, answers, strict=True))
    return {"exact_match": em / len(predictions), "f1": f / len(predictions), "count": len(predictions)}
