"""Where a study's cell time goes: every cell on Ray Train (the path before `study.launcher=auto`) against cells of
one worker training inside their own Ray task, in one invocation, each as `python -m jobs.compare` in its own
process with its own index.

For each path: the command's wall time and the cells' wall time split into training compute (the train loop's
steps, `train_seconds`), evaluation (every split, latency and forgetting, `evaluation_seconds`) and the rest
(starting workers, loading models, writing checkpoints); the ratio of the two; whether every cell answered every
question identically on both paths.

python benchmarks/study_overhead.py [--study smoke] [--methods zero_shot,full,lora,rag,rag+lora] [--out DIR]
    [--set study.knowledge.questions=none ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PATHS = {"ray": "every cell on Ray Train", "auto": "one-worker cells in their own task"}


def run_study(
    study: str, methods: str, launcher: str, out: Path, extra: list[str]
) -> tuple[float, dict[str, dict], int]:
    """Run the study on one path; its wall time, its cells' records and the lines it printed on the terminal."""
    study_dir = out / launcher
    overrides = yaml.safe_load((REPO / "conf" / "study" / f"{study}.yaml").read_text())["overrides"]
    overrides.append(f"index.storage_path={study_dir / 'indexes'}")  # each path builds and reads its own index
    quoted = ",".join(json.dumps(item) for item in overrides)
    command = [
        sys.executable,
        "-m",
        "jobs.compare",
        f"study={study}",
        f"study.name={study}_{launcher}",
        f"study.methods=[{methods}]",
        f"study.launcher={launcher}",
        f"study.overrides=[{quoted}]",
        f"study_dir={study_dir}",
        "tracking=disabled",
        *extra,
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    records = {path.stem: json.loads(path.read_text()) for path in sorted((study_dir / "cells").glob("*.json"))}
    return wall, records, len(done.stdout.splitlines()) + len(done.stderr.splitlines())


def split_time(records: dict[str, dict]) -> dict[str, float]:
    """The cells' wall time and its training, evaluation and other parts, in seconds."""
    wall = sum(record["wall_seconds"] for record in records.values())
    training = sum(record["metrics"].get("train_seconds", 0.0) for record in records.values())
    evaluation = sum(record["metrics"].get("evaluation_seconds", 0.0) for record in records.values())
    return {"wall": wall, "training": training, "evaluation": evaluation, "rest": wall - training - evaluation}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--study", default="smoke", help="a study of conf/study/")
    parser.add_argument("--methods", default="zero_shot,full,lora,rag,rag+lora")
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "benchmarks" / "study_overhead")
    parser.add_argument("--set", nargs="*", default=[], help="more overrides of jobs.compare, on both paths")
    args = parser.parse_args()
    out = args.out.resolve()
    runs = {launcher: run_study(args.study, args.methods, launcher, out, args.set) for launcher in PATHS}
    parts = {launcher: split_time(records) for launcher, (_, records, _) in runs.items()}
    cells = len(runs["ray"][1])
    print(f"study={args.study} methods=[{args.methods}] {' '.join(args.set)}: {cells} cells per path")
    header = "| path | command wall (s) | cell wall (s) | training (s) | evaluation (s) | rest (s) | compute share |"
    print(header + " lines |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for launcher, (wall, _, lines) in runs.items():
        part = parts[launcher]
        share = (part["training"] + part["evaluation"]) / part["wall"]
        print(
            f"| {PATHS[launcher]} (study.launcher={launcher}) | {wall:.0f} | {part['wall']:.0f} | "
            f"{part['training']:.0f} | {part['evaluation']:.0f} | {part['rest']:.0f} | {share:.0%} | {lines} |"
        )
    ray, auto = parts["ray"], parts["auto"]
    command = runs["auto"][0] / runs["ray"][0]
    print(
        f"auto / ray: command wall {command:.2f}x, cell wall {auto['wall'] / ray['wall']:.2f}x,"
        f" the rest {auto['rest'] / ray['rest']:.2f}x"
    )
    print("| cell | wall on Ray Train (s) | wall in its task (s) | ratio |")
    print("| --- | --- | --- | --- |")
    for cell, record in runs["ray"][1].items():
        other = runs["auto"][1][cell]
        ratio = other["wall_seconds"] / record["wall_seconds"]
        print(f"| {cell} | {record['wall_seconds']:.0f} | {other['wall_seconds']:.0f} | {ratio:.2f}x |")
    ray_records, auto_records = runs["ray"][1], runs["auto"][1]
    same = [cell for cell, record in ray_records.items() if record["questions"] == auto_records[cell]["questions"]]
    print(f"per-question records identical on both paths: {len(same)} of {cells} cells")


if __name__ == "__main__":
    main()
