"""Is a local TCP port free for the broker, and does something answer on it?"""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def port_is_free(port: int) -> bool:
    """Whether the broker could listen on ``127.0.0.1:port`` right now.

    SO_REUSEADDR matches what the JVM sets, so sockets in TIME_WAIT from an earlier broker do
    not count as taken, while a listener on 127.0.0.1 or on 0.0.0.0 does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def port_answers(port: int, *, timeout_s: float = 0.5) -> bool:
    """Whether a TCP connection to ``127.0.0.1:port`` is accepted."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout_s):
            return True
    except OSError:
        return False
