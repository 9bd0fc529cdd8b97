"""The rehearsal's container: runs an image's ``python -m <module>`` entry point on the rehearsal's network.

Run as ``<image python> container.py -m <module> [args...]`` in the image's workdir with the container's
environment. In AWS the job's SDK reaches AWS by DNS; here ``network.py`` routes the same hosts to the
rehearsal's loopback servers (so an explicit ``endpoint_url`` such as the WebSocket management API's is
honoured, not bypassed) and records every botocore call, written as JSON to ``REHEARSAL_CALLS_FILE`` when the
process ends, for the IAM check against the job's role. Nothing else changes: ``sys.path`` is what
``python -m`` gives (the working directory, then the image's own environment).
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys

import network


def _write_calls() -> None:
    path = os.environ.get("REHEARSAL_CALLS_FILE")
    if path:
        with open(path, "w") as out:
            json.dump(network.CALLS, out)


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "-m":
        raise SystemExit("usage: container.py -m <module> [args...]")
    module = sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    sys.path[0] = os.getcwd()  # as `python -m` sets it; this file's folder is not on the image's path
    network.install()
    atexit.register(_write_calls)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
