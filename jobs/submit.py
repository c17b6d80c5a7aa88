"""Submit a job to a Ray cluster: `python -m jobs.submit train experiment=quickstart --output /shared/rag_pet --wait`;
`--stop ID`, `--logs ID`, `--fetch ID [--to DIR]`. The cluster is `--address`, else `RAY_ADDRESS`, else
`conf/submit.yaml`'s `address`; the results go under `--output`, else `conf/submit.yaml`'s `output`."""

import argparse
import sys
from pathlib import Path

from rag_pet.errors import RagPetError
from rag_pet.submit import JOBS, Command, JobFailed, load_settings, run_submission

CONFIG_FILE = Path(__file__).resolve().parents[1] / "conf" / "submit.yaml"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.submit", description=__doc__)
    parser.add_argument("job", nargs="?", help=f"one of {', '.join(JOBS)}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the job, as on its own command line")
    parser.add_argument("--address", help="the cluster's dashboard, http://<head>:8265")
    parser.add_argument("--output", metavar="PATH", help="where results go: an absolute path every node sees")
    parser.add_argument("--ephemeral", action="store_true", help="keep results in the job's temporary working_dir")
    parser.add_argument("--wait", action="store_true", help="follow the logs; exit 1 unless the job succeeds")
    parser.add_argument("--stop", metavar="ID", help="stop the job with this submission id")
    parser.add_argument("--logs", metavar="ID", help="print the logs of the job with this submission id")
    parser.add_argument("--fetch", metavar="ID", help="where a finished job's results are (copied with --to)")
    parser.add_argument("--to", metavar="DIR", help="with --fetch: copy the results into DIR/<ID>")
    parser.add_argument("--image", help="container image URI the job runs in")
    parser.add_argument("--pip", action="append", default=[], help="a requirement the job installs (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="an environment variable")
    return parser.parse_intermixed_args(argv)


def run(args: argparse.Namespace) -> None:
    """What the command does."""
    settings = load_settings(CONFIG_FILE, args.address, args.image, args.pip, args.env, args.output, args.ephemeral)
    command = Command(args.job, args.overrides, args.wait, args.stop, args.logs, args.fetch, args.to)
    run_submission(
        settings, command, lambda line: print(line, flush=True), lambda text: print(text, end="", flush=True)
    )


def main() -> None:
    try:
        run(parse_args(sys.argv[1:]))
    except JobFailed as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    except RagPetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
