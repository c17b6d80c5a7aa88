"""Reading recipes: a closed-book method listed as `<method>@<recipe>` reads the documents by that recipe (phrasings,
permuted sentences, full names, questions mixed in, passes, text learning rate), beside the same method by
`study.knowledge`; the report gives every closed-book method's fit and storage."""

from pathlib import Path

import pytest

from rag_pet.errors import ConfigError
from rag_pet.evaluation.statistics import estimate
from rag_pet.study.cells import plan_cells
from rag_pet.study.fit_report import fit_markdown, fit_rows, probed
from rag_pet.study.names import KNOWLEDGE, MAIN
from rag_pet.study.spec import FreshnessConfig, KnowledgeConfig, StudyConfig
from rag_pet.training.batching import mixed_questions, text_pool_size, training_texts
from tests.conftest import CONF_DIR
from tests.study.test_study import tiny_study

FICTIONAL = ("data=fictional", "corpus=fictional", "data.fictional_entities=12", "data.validation_articles=4")
RECIPES = {
    "aug": {"epochs": 2, "phrasings": 3, "permute": True, "full_names": True, "lr_factor": 10},
    "facts": {"questions": "facts"},
    "mixed": {"questions": "train"},
}


def plan(tmp_path, methods: list[str], **fields):
    compare = tiny_study(
        tmp_path,
        *FICTIONAL,
        "data.test_articles=3",
        methods=methods,
        seeds=[0],
        protocol="knowledge_matched",
        knowledge=KnowledgeConfig(epochs=1),
        recipes=RECIPES,
        **fields,
    )
    return {c.id: c for c in plan_cells(compare.study, Path(compare.study_dir), CONF_DIR, compare.tracking)}


def test_a_recipe_changes_how_its_method_reads_the_documents_and_nothing_else(tmp_path):
    cells = plan(tmp_path, ["lora", "lora@aug", "lora@facts", "lora@mixed"])
    plain, aug = cells["lora-seed0.knowledge"], cells["lora_aug-seed0.knowledge"]
    facts, mixed = cells["lora_facts-seed0.knowledge"], cells["lora_mixed-seed0.knowledge"]
    texts = training_texts(plain.config.data, plain.config.corpus)
    assert len(training_texts(aug.config.data, aug.config.corpus)) == 3 * len(texts)
    assert aug.config.trainer.lr == pytest.approx(10 * plain.config.trainer.lr)
    batch = aug.config.trainer.batch_size
    assert aug.config.trainer.max_steps == 2 * (text_pool_size(aug.config.data, aug.config.corpus) // batch)
    assert text_pool_size(aug.config.data, aug.config.corpus) == 3 * len(texts)
    fact_questions = mixed_questions(facts.config.data, texts)
    assert {q.article for q in fact_questions} == {p.title.replace(" ", "_") for p in texts}
    assert facts.config.trainer.max_steps == (len(texts) + len(fact_questions)) // facts.config.trainer.batch_size
    assert len(mixed_questions(mixed.config.data, texts)) == 8  # the study's train_examples, as the main cell reads
    for method in ("lora_aug", "lora_facts", "lora_mixed"):  # the questions stage is the plain method's
        main, base = cells[f"{method}-seed0"], cells["lora-seed0"]
        assert main.kind == MAIN and main.config.trainer == base.config.trainer.__class__(
            **{**vars(base.config.trainer), "init_from": str(cells[f"{method}-seed0.knowledge"].model_dir)}
        )
        assert main.config.eval.storage_probe and cells[f"{method}-seed0.knowledge"].kind == KNOWLEDGE


def test_fresh_text_reads_the_late_articles_by_the_methods_recipe(tmp_path):
    fresh = FreshnessConfig(enabled=True, variants=["text"])
    cells = plan(tmp_path, ["lora@aug", "rag"], freshness=fresh)
    fresh_text, main = cells["lora_aug-seed0.fresh_text"], cells["lora_aug-seed0"]
    data = fresh_text.config.data
    assert (data.phrasings, data.permute_sentences, data.full_names) == (3, True, True)
    assert fresh_text.config.trainer.lr == pytest.approx(cells["lora_aug-seed0.knowledge"].config.trainer.lr)
    assert main.config.trainer.lr == pytest.approx(fresh_text.config.trainer.lr / 10)
    assert not cells["rag"].config.eval.storage_probe  # the probe is for weights-only answers


def test_unknown_recipes_and_recipes_for_methods_that_do_not_read_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="study.methods"):
        StudyConfig(methods=["full@nope"])
    with pytest.raises(ConfigError, match=r"study.recipes.bad.pases"):
        StudyConfig(methods=["full@bad"], recipes={"bad": {"pases": 3}})
    with pytest.raises(ConfigError, match=r"study.recipes.bad.questions"):
        StudyConfig(methods=["full@bad"], recipes={"bad": {"questions": "all"}})
    with pytest.raises(ConfigError, match="study.methods"):
        plan(tmp_path, ["rag@aug"])
    with pytest.raises(ConfigError, match="study.protocol"):
        StudyConfig(methods=["full@aug"], recipes=RECIPES, protocol="questions_only")
    # a data-needs cell on n questions must not start from weights that read all the training questions
    with pytest.raises(ConfigError, match="study.budgets"):
        StudyConfig(methods=["full@mixed"], recipes=RECIPES, budgets=[24])
    StudyConfig(methods=["full@facts"], recipes=RECIPES, budgets=[24])


def record(method: str, split_scores: dict[str, list[tuple[float, float | None]]]) -> dict:
    questions = {
        split: [
            {"id": f"{split}{i}", "article": f"a{i // 2}", "exact_match": em, "storage_probe": stored}
            for i, (em, stored) in enumerate(scores)
        ]
        for split, scores in split_scores.items()
    }
    return {"method": method, "kind": MAIN, "status": "done", "questions": questions, "config": {}}


def test_fit_flags_a_method_below_the_threshold_and_storage_skips_unprobed_questions():
    fitted = [(1.0, 1.0), (1.0, None), (1.0, 1.0), (0.0, 0.0)]
    unfit = [(0.0, 1.0), (0.0, 1.0), (0.0, None), (1.0, 0.0)]
    records = [
        record("full", {"train": fitted, "validation": unfit}),
        record("lora", {"train": unfit, "validation": unfit}),
    ]
    study = StudyConfig(methods=["full", "lora", "rag"])
    rows = {row["method"]: row for row in fit_rows(study, records)}
    assert set(rows) == {"full", "lora"}  # a retrieving method is no closed-book method
    assert rows["full"]["fits"] and not rows["lora"]["fits"]
    stored = probed(records, "lora", "train", "storage_probe", 0.95)
    expected = estimate([[1.0, 1.0, 0.0]], ["a0", "a0", "a1"], bounded=True)
    assert (stored.mean, stored.n, stored.low, stored.high) == (expected.mean, 3, expected.low, expected.high)
    text = "\n".join(fit_markdown(study, records))
    assert "**does not fit its training set**" in text and text.count("| fits |") == 1
