"""Metrics, evaluation runners and result tables."""

from rag_pet.evaluation.qa_eval import evaluate_qa
from rag_pet.evaluation.qa_metrics import exact_match, f1, normalize_answer, qa_scores
from rag_pet.evaluation.report import format_table

__all__ = ["evaluate_qa", "exact_match", "f1", "format_table", "normalize_answer", "qa_scores"]
