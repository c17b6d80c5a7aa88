"""The package's shape as README.md states it (its "Layers" section): imports run down the layers and in no circle,
counting imports inside functions, under `TYPE_CHECKING` and the objective modules the registry loads by name; the
whole config stops at the wiring modules, Ray starts in one place, and closed-book training imports without Ray,
FAISS, DeepSpeed or bm25s (GPU checks run it standalone)."""

import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import rag_pet.objectives as objectives

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rag_pet"
# Modules that turn the whole `RagPetConfig` into sections; everything below them takes sections or plain values.
WIRING = {
    "rag_pet.cli",
    "rag_pet.experiment_config",
    "rag_pet.experiment",
    "rag_pet.training.launcher",
    "rag_pet.training.tasks",
    "rag_pet.inference.spec",
    "rag_pet.served_run",
    "rag_pet.evaluation.steps",
    # a study composes whole experiment configs, one per cell
    "rag_pet.study.cells",
    "rag_pet.study.cell_checks",
    "rag_pet.study.curve_cells",
    "rag_pet.study.budget",
    "rag_pet.study.index_cost",
    "rag_pet.study.shared",
    # a sweep composes one whole experiment config per trial
    "rag_pet.sweep.plan",
}
ARCHITECTURE = ROOT / "README.md"  # the document this file enforces: its "### Layers" block


def stated_layers(text: str) -> list[set[str]]:
    """The layers the README's "### Layers" section lists, bottom first: one line each in its first fenced block,
    `<number> <top-level module or package> ...`."""
    section = text.split("\n### Layers\n", 1)[1]
    block = section.split("```", 2)[1]
    return [set(line.split()[1:]) for line in block.strip().splitlines()]


LAYERS = stated_layers(ARCHITECTURE.read_text())


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(source: str) -> set[str]:
    """The rag_pet modules a file imports: at top level, inside functions and under `if TYPE_CHECKING:` alike."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("rag_pet"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rag_pet"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return found & MODULES.keys()


def loaded_by_name(module: str) -> set[str]:
    """The modules `module` loads by name: the objectives' registry loads each objective's module
    (`rag_pet.objectives.objective_names`), which is an import as much as a written one."""
    if module != "rag_pet.objectives":
        return set()
    return {f"{module}.{found.name}" for found in pkgutil.iter_modules(objectives.__path__)} - {
        f"{module}.{name}" for name in objectives.NOT_OBJECTIVES
    }


GRAPH = {name: (imported_modules(path.read_text()) | loaded_by_name(name)) - {name} for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return next(number for number, names in enumerate(LAYERS) if top in names)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{source} imports {target}"
        for source, targets in graph.items()
        if source != "rag_pet"
        for target in targets
        if layer(target) > layer(source)
    ]


def test_the_package_has_no_import_cycle():
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_every_module_is_in_a_stated_layer():
    assert not [name for name in MODULES if name != "rag_pet" and not any(name.split(".")[1] in s for s in LAYERS)]


def test_imports_point_down_the_layers():
    assert not upward_imports(GRAPH)


UPWARD = {
    "under TYPE_CHECKING": "if TYPE_CHECKING:\n    from rag_pet.study.spec import StudyConfig\n",
    "inside a function": "def f():\n    from rag_pet.study import spec\n",
    "as a module": "def f():\n    import rag_pet.study.spec\n",
}


@pytest.mark.parametrize("how", list(UPWARD))
def test_an_upward_import_is_found_however_it_is_written(how):
    graph = {**GRAPH, "rag_pet.config.schema": GRAPH["rag_pet.config.schema"] | imported_modules(UPWARD[how])}
    assert upward_imports(graph) == ["rag_pet.config.schema imports rag_pet.study.spec"]


def test_the_registry_counts_as_importing_each_objective():
    assert {"rag_pet.objectives.closed_book", "rag_pet.objectives.rag"} <= GRAPH["rag_pet.objectives"]
    assert "rag_pet.objectives.base" not in loaded_by_name("rag_pet.objectives")


def test_the_generic_train_loop_knows_no_objective():
    loop = GRAPH["rag_pet.training.loop"]
    assert not loop & {f"rag_pet.training.{task}" for task in ("closed_book", "rag_task", "retriever_task", "tasks")}
    tree = ast.parse(MODULES["rag_pet.training.loop"].read_text())
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "rag"]
    assert "index_version" not in MODULES["rag_pet.training.loop"].read_text()


def test_evaluation_does_not_import_serving():
    evaluation = {name: targets for name, targets in GRAPH.items() if name.startswith("rag_pet.evaluation")}
    assert not {t for targets in evaluation.values() for t in targets if t.startswith("rag_pet.serving")}


def test_the_whole_config_stops_at_the_wiring_modules_and_the_objectives():
    mentions = {name for name, path in MODULES.items() if re.search(r"\bRagPetConfig\b", path.read_text())}
    wiring = WIRING | {name for name in MODULES if name.startswith("rag_pet.objectives")}
    assert {name for name in mentions if not name.startswith("rag_pet.config")} <= wiring


def test_no_module_outside_the_objectives_compares_objective_names():
    compares = re.compile(r"objective\s*(==|!=|\bin\b|\bnot in\b)")
    found = [name for name, path in MODULES.items() if compares.search(path.read_text())]
    assert not [name for name in found if not name.startswith("rag_pet.objectives")]


def test_ray_is_started_in_one_place():
    sources = [*ROOT.glob("rag_pet/**/*.py"), *ROOT.glob("jobs/*.py"), *ROOT.glob("benchmarks/*.py")]
    sources += [path for path in ROOT.glob("tests/**/*.py") if path != Path(__file__)]
    callers = [str(path.relative_to(ROOT)) for path in sources for _ in re.finditer(r"ray\.init\(", path.read_text())]
    assert callers == ["rag_pet/runtime.py"]


BLOCKED = ("ray", "faiss", "deepspeed", "bm25s")
STANDALONE = f"""
import sys
from pathlib import Path

import torch

for name in {BLOCKED!r}:
    sys.modules[name] = None  # an import of it now raises ImportError

from rag_pet.config import to_config
from rag_pet.objectives import objective_named
from rag_pet.training import LocalContext, run_train_loop

config = to_config({{
    "run_dir": sys.argv[1],
    "model": {{"source": "tiny", "hidden_size": 32, "num_layers": 1}},
    "data": {{"max_train_examples": 8}},
    "peft": {{"target_modules": ["all-linear"]}},
    "trainer": {{"launcher": "local", "max_steps": 2, "batch_size": 4, "log_every": 1, "checkpoint_every": 2}},
    "tracking": {{"mode": "disabled"}},
}})
context = LocalContext(Path(sys.argv[1]) / "ckpt", torch.device("cpu"))
state = run_train_loop(config, context, objective_named("closed_book"))
print("steps", state["step"])
"""


@pytest.mark.parametrize("blocked", [BLOCKED])
def test_closed_book_training_runs_without_ray_faiss_deepspeed_or_bm25s(tmp_path, blocked):
    done = subprocess.run(
        [sys.executable, "-c", STANDALONE, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("steps 2")
