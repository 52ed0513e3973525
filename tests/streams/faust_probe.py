"""A minimal faust-streaming job run as a subprocess by tests/streams/test_faust.py.

    python tests/streams/faust_probe.py gap     # agent concurrency=2, one slow message (issue #606)
    python tests/streams/faust_probe.py count   # a table counting events per key (changelog)

Environment: PROBE_BROKER (host:port), PROBE_TOPIC, PROBE_APP, PROBE_OUT (a file each
processed message's value is appended to), PROBE_DATADIR, PROBE_SLOW (value that sleeps).
"""

from __future__ import annotations

import asyncio
import os
import sys

import faust

MODE = sys.argv[1]
app = faust.App(
    os.environ["PROBE_APP"], broker=f"kafka://{os.environ['PROBE_BROKER']}",
    datadir=os.environ["PROBE_DATADIR"], web_enabled=False, key_serializer="raw", value_serializer="json",
    broker_commit_interval=0.5, topic_partitions=1, topic_replication_factor=1,
    table_standby_replicas=0, processing_guarantee=os.environ.get("PROBE_GUARANTEE", "at_least_once"),
)
topic = app.topic(os.environ["PROBE_TOPIC"], key_type=bytes, value_type=bytes,
                  key_serializer="raw", value_serializer="raw")
counts = app.Table("counts", default=int, partitions=1, key_type=bytes, value_type=int)


def _done(value: bytes) -> None:
    with open(os.environ["PROBE_OUT"], "ab") as fh:
        fh.write(value + b"\n")
        fh.flush()
        os.fsync(fh.fileno())


if MODE == "gap":

    @app.agent(topic, concurrency=2)
    async def gap(stream: faust.StreamT[bytes]) -> None:
        async for value in stream:
            await asyncio.sleep(3600 if value == os.environ.get("PROBE_SLOW", "").encode() else 0.05)
            _done(value)

else:

    @app.agent(topic)
    async def count(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await asyncio.sleep(0.002)  # a job that does some work per event
            counts[event.key] += 1
            _done(event.value)


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel=warn"]
    app.main()
