"""Each default is written once: where a YAML file of a default choice sets a value, the dataclass agrees."""

from dataclasses import MISSING, fields, is_dataclass, replace

import pytest
from omegaconf import OmegaConf

from rag_pet.config import RagPetConfig
from rag_pet.study.spec import StudyConfig
from tests.conftest import CONF_DIR

# the groups' default choices (conf/config.yaml) and the study's (conf/compare.yaml)
DEFAULT_CHOICES = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))["defaults"]
CHOSEN = {group: option for entry in DEFAULT_CHOICES if isinstance(entry, dict) for group, option in entry.items()}


def _default(cls, name: str):
    field = next(f for f in fields(cls) if f.name == name)
    return field.default if field.default is not MISSING else field.default_factory()


def disagreements(defaults, yaml: dict, prefix: str) -> list[str]:
    """Every key of `yaml` whose value differs from the default-built dataclass `defaults` (nested dataclasses
    field by field)."""
    found = []
    for key, value in yaml.items():
        if key == "defaults":
            continue
        default = getattr(defaults, key)
        if is_dataclass(default) and isinstance(value, dict):
            found += disagreements(default, value, f"{prefix}{key}.")
        elif getattr(replace(defaults, **{key: value}), key) != default:  # as the dataclass normalises it
            found.append(f"{prefix}{key}: YAML {value!r}, dataclass {default!r}")
    return found


@pytest.mark.parametrize("group", sorted(group for group, option in CHOSEN.items() if option))
def test_the_default_choice_of_every_group_agrees_with_its_dataclass(group):
    yaml = OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{CHOSEN[group]}.yaml"))
    assert disagreements(_default(RagPetConfig, group), yaml, f"{group}.") == []


def test_the_default_study_agrees_with_its_dataclass():
    yaml = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "study" / "default.yaml"))
    assert disagreements(StudyConfig(), yaml, "study.") == []


def test_a_disagreement_is_found():
    found = disagreements(StudyConfig(), {"train_examples": 1}, "study.")
    assert found == ["study.train_examples: YAML 1, dataclass 96"]
