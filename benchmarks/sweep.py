"""A learning-rate sweep of SmolLM2-135M LoRA: `python -m jobs.sweep` (Ray Tune, ASHA stopping trials whose training
loss falls behind) against what a user would otherwise run, Hydra's multirun of `python -m jobs.train` over the same
learning rates (one after another, every trial to the end). Both from a cold start, on the same machine, in one run.

python benchmarks/sweep.py [--steps 40] [--questions 50] [--lrs 1e-5 1e-4 3e-4 1e-3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str]) -> float:
    """Wall seconds of a command run from the repository root; raises if it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, *command], cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 1e-4, 3e-4, 1e-3])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="rag_pet_sweep_bench_"))
    experiment = [
        "experiment=quickstart",
        f"trainer.max_steps={args.steps}",
        "trainer.log_every=5",
        f"data.max_eval_examples={args.questions}",
        "eval.before_training=false",
        "tracking=wandb_offline",
    ]
    lrs = ",".join(repr(lr) for lr in args.lrs)
    sweep_dir = out / "sweep"
    sweep_s = run(
        [
            "-m",
            "jobs.sweep",
            "sweep=lora_lr",
            *experiment,
            "sweep.search=grid",
            "sweep.num_samples=1",
            "~sweep.space.trainer.lr",
            f"+sweep.space.trainer.lr={{type: grid, values: [{lrs}]}}",
            f"hydra.run.dir={sweep_dir}",
        ]
    )
    summary = json.loads((sweep_dir / "summary.json").read_text())
    multirun_dir = out / "multirun"
    multirun_s = run(["-m", "jobs.train", "-m", *experiment, f"trainer.lr={lrs}", f"hydra.sweep.dir={multirun_dir}"])
    multirun = []
    for results in sorted(multirun_dir.glob("*/results.json")):
        record = json.loads(results.read_text())
        config = json.loads((results.parent / "config.json").read_text())
        multirun.append({"lr": config["trainer"]["lr"], "f1": record["metrics"].get("f1")})

    print(f"SmolLM2-135M LoRA, {len(args.lrs)} learning rates, {args.steps} steps x batch 8, F1 on {args.questions}")
    print(f"{'trial':<14}{'lr':>10}  {'status':<14}{'F1':>7}{'loss':>9}")
    for trial in summary["trials"]:
        f1 = trial["metric"]
        print(
            f"{trial['trial_id']:<14}{trial['params']['trainer.lr']:>10.0e}  {trial['status']:<14}"
            f"{f1 if f1 is None else round(f1, 3)!s:>7}{trial['early_stop_metric']:>9.3f}"
        )
    print("hydra multirun:", ", ".join(f"lr {r['lr']:.0e} F1 {r['f1']:.3f}" for r in multirun))
    print(f"jobs.sweep (Ray Tune + ASHA): {sweep_s:.0f} s; best {summary['best']['params']}")
    print(f"jobs.train -m (Hydra multirun, sequential): {multirun_s:.0f} s")
    print(f"ratio: {multirun_s / sweep_s:.2f}x faster with the sweep")
    if args.json:
        args.json.write_text(
            json.dumps({"sweep_s": sweep_s, "multirun_s": multirun_s, "sweep": summary, "multirun": multirun}, indent=1)
        )


if __name__ == "__main__":
    main()
