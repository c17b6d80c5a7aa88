"""A run directory belongs to one live run; the lock goes with its process, however that process ends."""

import signal
import subprocess
import sys
import time

import pytest

from rag_pet.errors import ConfigError
from rag_pet.experiment import run_experiment
from rag_pet.run_lock import LOCK_FILE, run_directory_lock

HELD = r"run_dir=.* is invalid; allowed: a directory no live run is using \(pid"
HOLD = """
import sys, time
from rag_pet.run_lock import run_directory_lock
with run_directory_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_run_on_a_held_directory_stops_naming_the_holder(tiny_config, tmp_path):
    config = tiny_config()
    with run_directory_lock(config.run_dir):
        with pytest.raises(ConfigError, match=HELD):
            run_experiment(config)
    assert not (tmp_path / "run" / "config.json").exists()  # the refused run wrote nothing


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ConfigError, match=f"pid {holder.pid} on"):
            with run_directory_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    deadline = time.monotonic() + 30
    while True:  # the kernel drops the lock with the process
        try:
            with run_directory_lock(tmp_path):
                break
        except ConfigError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert (tmp_path / LOCK_FILE).is_file()
