"""The health server on a socket it is handed (a supervisor's worker) as on one it binds."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client import CollectorRegistry, Counter

from scorer.service.http import HealthServer


async def _get(port: int, path: str) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0].decode(), body


async def test_an_inherited_listening_socket_is_served_as_a_bound_port_is() -> None:
    registry = CollectorRegistry()
    Counter("scorer_things", "things", registry=registry).inc(3)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    handed = HealthServer(registry, lambda: False, host="0.0.0.0", port=1, fd=listener.detach())
    bound = HealthServer(registry, lambda: True, port=0)
    await handed.start()
    await bound.start()
    try:
        assert (handed.host, handed.port) == ("127.0.0.1", port)  # the socket's, not host/port's
        assert bound.port not in (0, port)
        for server, ready in ((handed, "503"), (bound, "200")):
            assert (await _get(server.port, "/healthz"))[0].split(" ")[1] == "200"
            assert (await _get(server.port, "/readyz"))[0].split(" ")[1] == ready
            status, body = await _get(server.port, "/metrics")
            assert status.split(" ")[1] == "200" and b"scorer_things_total 3.0" in body
    finally:
        await handed.close()
        await bound.close()
