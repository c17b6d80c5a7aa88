"""Where and how each planned cell runs on the cluster: CPUs shared among cells side by side, and one-worker cells
training inside their own Ray task (`study.launcher`). Both append overrides, so a cell's command still re-runs
exactly its config."""

from __future__ import annotations

from dataclasses import replace

from rag_pet.study.cells import Cell, with_changes


def share_cpus(cells: list[Cell], cpus_per_cell: float) -> list[Cell]:
    """The cells with each one's workers sharing `cpus_per_cell` CPUs (cells running side by side), unless the
    study's overrides set `trainer.cpus_per_worker` themselves."""
    shared = []
    for cell in cells:
        if any(o.startswith("trainer.cpus_per_worker=") for o in cell.overrides):
            shared.append(cell)
            continue
        overrides = list(cell.overrides)
        cpus = {"cpus_per_worker": cpus_per_cell / cell.config.trainer.num_workers}
        config = with_changes(overrides, cell.config, "trainer", cpus)
        shared.append(replace(cell, overrides=tuple(overrides), config=config))
    return shared


def in_their_tasks(cells: list[Cell], launcher: str) -> list[Cell]:
    """Under `study.launcher=auto`, each cell that trains on one worker without DeepSpeed, and whose overrides
    leave `trainer.launcher` alone, trains inside its own Ray task (`trainer.launcher=local`)."""
    return [_in_its_task(cell) for cell in cells] if launcher == "auto" else cells


def _in_its_task(cell: Cell) -> Cell:
    config = cell.config
    one_worker = config.trainer.num_workers == 1 and not config.deepspeed.enabled
    chosen = any(override.startswith("trainer.launcher=") for override in cell.overrides)
    if not cell.method.trains or cell.job != "train" or not one_worker or chosen:
        return cell
    overrides = list(cell.overrides)
    config = with_changes(overrides, config, "trainer", {"launcher": "local"})
    return replace(cell, overrides=tuple(overrides), config=config)
