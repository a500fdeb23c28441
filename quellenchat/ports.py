"""A free TCP port on loopback, for the local LLM server, the tests and the benchmarks."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 that nobody listens on right now.

    The OS picks it; it is free when this returns, not reserved: a caller starts its server on it
    at once (another process may take it meanwhile, rarely enough for loopback servers and tests).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
