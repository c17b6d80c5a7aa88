"""Submit a job to a Ray cluster: `python -m jobs.submit train experiment=quickstart --wait`; `--stop ID`,
`--logs ID`. The cluster is `--address`, else `RAY_ADDRESS`, else `conf/submit.yaml`'s `address`."""

import argparse
import sys
from pathlib import Path

from omegaconf import OmegaConf

from rag_pet.config import to_structured
from rag_pet.errors import ConfigError, RagPetError
from rag_pet.submit import JOBS, SubmitConfig, connect, failure_line, follow, stop, submit

CONFIG_FILE = Path(__file__).resolve().parents[1] / "conf" / "submit.yaml"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m jobs.submit", description=__doc__)
    parser.add_argument("job", nargs="?", help=f"one of {', '.join(JOBS)}")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the job, as on its own command line")
    parser.add_argument("--address", help="the cluster's dashboard, http://<head>:8265")
    parser.add_argument("--wait", action="store_true", help="follow the logs; exit 1 unless the job succeeds")
    parser.add_argument("--stop", metavar="ID", help="stop the job with this submission id")
    parser.add_argument("--logs", metavar="ID", help="print the logs of the job with this submission id")
    parser.add_argument("--image", help="container image URI the job runs in")
    parser.add_argument("--pip", action="append", default=[], help="a requirement the job installs (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE", help="an environment variable")
    return parser.parse_intermixed_args(argv)


def settings(args: argparse.Namespace) -> SubmitConfig:
    config = to_structured(OmegaConf.load(CONFIG_FILE), SubmitConfig)
    config.address = args.address or config.address
    config.image = args.image or config.image
    config.pip = [*config.pip, *args.pip]
    for pair in args.env:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError("--env", pair, "KEY=VALUE")
        config.env_vars[key] = value
    return config


def run(args: argparse.Namespace) -> int:
    """What the command does; its exit status."""
    if bool(args.job) + bool(args.stop) + bool(args.logs) != 1:
        raise ConfigError("job", args.job, f"one of {', '.join(JOBS)} with its overrides, or --stop ID, or --logs ID")
    config = settings(args)
    client = connect(config)
    if args.stop:
        print(f"job {args.stop}: {_known(lambda: stop(client, args.stop), args.stop)}")
        return 0
    if args.logs:
        print(_known(lambda: client.get_job_logs(args.logs), args.logs), end="")
        return 0
    submission_id = submit(client, args.job, args.overrides, config)
    print(f"submitted {submission_id}: python -m jobs.{args.job} {' '.join(args.overrides)}".rstrip())
    if not args.wait:
        print(f"follow it: python -m jobs.submit --logs {submission_id}; stop it: --stop {submission_id}")
        return 0
    status = follow(client, submission_id, lambda text: print(text, end="", flush=True))
    if status == "SUCCEEDED":
        print(f"job {submission_id} SUCCEEDED")
        return 0
    print(f"error: {failure_line(client, submission_id)}", file=sys.stderr)
    return 1


def _known(call, submission_id: str):
    """`call()`, with the client's error for an unknown submission id as one line."""
    try:
        return call()
    except RuntimeError as err:
        if "does not exist" not in str(err) and "404" not in str(err):
            raise
        raise ConfigError("ID", submission_id, "a submission id of this cluster (`ray job list`)") from None


def main() -> None:
    try:
        sys.exit(run(parse_args(sys.argv[1:])))
    except RagPetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
