"""`ensure_ray`: an unreachable cluster address is one line naming RAY_ADDRESS, within seconds."""

import os
import socket
import subprocess
import sys


def test_an_unreachable_ray_address_is_a_config_error_naming_it():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    code = "from rag_pet.runtime import ensure_ray\nensure_ray()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "RAY_ADDRESS": address},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert f"RAY_ADDRESS={address!r} is invalid; allowed: the address of a running Ray cluster" in done.stderr
