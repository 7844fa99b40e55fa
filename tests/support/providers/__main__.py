"""Run the local providers as a process: ``python -m tests.support.providers --smtp-port P --http-port Q``.

Used by ``refract bench deliveries`` so that the servers do not share a process (or a GIL) with
the code being measured. Prints ``ready`` once both listen; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading

from tests.support.providers.http import HttpProviders
from tests.support.providers.smtp import FakeSmtp


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with FakeSmtp(args.smtp_port, keep=False), HttpProviders(args.http_port):
        print("ready", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
