"""``serve_io``: the loop's I/O gets its turns while a batch is scored, unless whoever owns
the connections says none of its requests can be answered (``watch_io``) and nothing is
ready: then the batch does not pay for loop iterations that serve nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from scorer.pipeline.turns import serve_io, watch_io


@contextmanager
def readable() -> Iterator[list[str]]:
    """A socket with bytes waiting (registered inside the test: a loop iteration between the
    set-up and the test would read it), whose reader callback records the turn that ran it."""
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.send(b"x")
    loop = asyncio.get_running_loop()
    seen: list[str] = []
    loop.add_reader(reader.fileno(), lambda: seen.append(reader.recv(1).decode()))
    try:
        yield seen
    finally:
        loop.remove_reader(reader.fileno())
        reader.close()
        writer.close()


async def test_without_a_watch_every_call_takes_a_turn() -> None:
    with readable() as seen:
        await serve_io()
        assert seen == ["x"]


@pytest.mark.parametrize("pending", [False, True])
async def test_a_watch_with_nothing_pending_skips_the_turns(pending: bool) -> None:
    with readable() as seen:
        unwatch = watch_io(lambda: pending)
        try:
            await serve_io()
            assert seen == (["x"] if pending else [])
        finally:
            unwatch()
        await serve_io()  # the watch removed: turns again
        assert seen == ["x"]


async def test_a_ready_callback_gets_its_turn_whatever_the_watch_says() -> None:
    ran: list[int] = []
    unwatch = watch_io(lambda: False)
    try:
        asyncio.get_running_loop().call_soon(ran.append, 1)
        await serve_io()
        assert ran == [1]
    finally:
        unwatch()


async def test_one_pending_watch_of_several_is_enough() -> None:
    with readable() as seen:
        removers = [watch_io(lambda: False), watch_io(lambda: True)]
        try:
            await serve_io()
            assert seen == ["x"]
        finally:
            for remove in removers:
                remove()
