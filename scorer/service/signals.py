"""SIGTERM/SIGINT ask a running loop to stop gracefully (finish the batch in flight)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable


def stop_on_signals(request_stop: Callable[[], None]) -> None:
    """Call ``request_stop`` on SIGTERM or SIGINT; call from inside the running loop."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform
            loop.add_signal_handler(sig, request_stop)
