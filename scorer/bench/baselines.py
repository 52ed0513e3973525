"""What a user might build instead: per-event scoring loops on three stream libraries.

Each scores every event with the same decoder, feature definition and ONNX model as the
scorer, one event at a time, and produces one score record per event. Run one with
``python -m scorer.bench.baselines NAME --bootstrap B --group G --out T --topics a,b,c``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import msgspec
import onnxruntime as ort

from scorer.config import Settings
from scorer.events.decode import DecodeFailure, EventDecoder
from scorer.events.structs import EndpointEvent, EventKind, SourceRef
from scorer.features import feature_set
from scorer.inference.repository import load_version
from scorer.service.build import load_rules


class PerEventScorer:
    """One event in, one score record out: the baseline's unit of work."""

    def __init__(self, repository: Path, topic_kinds: dict[str, EventKind]) -> None:
        self.topic_kinds = topic_kinds
        self.decoder = EventDecoder()
        kinds = set(topic_kinds.values())
        # The scorer's rule pack on EDR events, before features (feature set v3 reads the hits).
        self.rules = load_rules(Settings(kinds=tuple(sorted(kinds))))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sessions = {}
        self.features = {}
        for kind in kinds:
            version = load_version(repository, f"{kind.value}_classifier")
            stage = self.rules if kind is EventKind.EDR else None
            self.features[kind] = feature_set(kind, version.card.feature_set,
                                              rules=stage.by_id if stage is not None else None)
            self.sessions[kind] = (ort.InferenceSession(str(version.onnx_path), opts), version.card.threshold)
        self.enc = msgspec.json.Encoder()

    def score(self, topic: str, partition: int, offset: int, value: bytes | None) -> bytes:
        kind = self.topic_kinds[topic]
        event = self.decoder.decode(kind, value, SourceRef(topic, partition, offset))
        if isinstance(event, DecodeFailure):
            return self.enc.encode({"uid": f"{topic}:{partition}:{offset}", "error": event.reason})
        if self.rules is not None and isinstance(event, EndpointEvent):
            annotated, errors = self.rules.annotate([event])
            if errors:
                return self.enc.encode({"uid": event.uid, "error": "rule_error"})
            event = annotated[0]
        x = self.features[kind].transform([event])
        session, threshold = self.sessions[kind]
        p = float(session.run(["probabilities"], {"features": x})[0][0, 1])
        return self.enc.encode({"uid": event.uid, "score": p, "alerted": p >= threshold})


async def aiokafka_loop(args: argparse.Namespace, scorer: PerEventScorer) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    consumer = AIOKafkaConsumer(*args.topics, bootstrap_servers=args.bootstrap, group_id=args.group,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    producer = AIOKafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=1)
    await consumer.start()
    await producer.start()
    try:
        async for msg in consumer:
            out = scorer.score(msg.topic, msg.partition, msg.offset, msg.value)
            await producer.send(args.out, out, key=msg.key)
    finally:
        await producer.stop()
        await consumer.stop()


def faust_agent(args: argparse.Namespace, scorer: PerEventScorer) -> None:
    import atexit
    import shutil
    import tempfile

    import faust

    # faust creates its data directory even with an in-memory store; keep it out of the checkout.
    datadir = tempfile.mkdtemp(prefix="scorer-bench-faust-")
    atexit.register(shutil.rmtree, datadir, True)
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", web_enabled=False, datadir=datadir,
                    consumer_auto_offset_reset="earliest", topic_disable_leader=True, store="memory://")
    source = app.topic(*args.topics, value_serializer="raw", key_serializer="raw")
    sink = app.topic(args.out, value_serializer="raw", key_serializer="raw")

    @app.agent(source)  # type: ignore[arg-type]
    async def score(stream: faust.Stream) -> None:  # type: ignore[type-arg]
        async for event in stream.events():
            msg = event.message
            await sink.send(key=msg.key, value=scorer.score(msg.topic, msg.partition, msg.offset, msg.value))

    sys.argv = ["faust", "worker", "--loglevel", "warn", "--without-web"]
    app.main()


def quix_app(args: argparse.Namespace, scorer: PerEventScorer) -> None:
    import atexit
    import shutil
    import tempfile

    from quixstreams import Application, MessageContext

    # Quix creates its state directory even for a stateless app; keep it out of the checkout.
    state_dir = tempfile.mkdtemp(prefix="scorer-bench-quix-")
    atexit.register(shutil.rmtree, state_dir, True)
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      auto_create_topics=False, state_dir=state_dir)
    out = app.topic(args.out, value_serializer="bytes", key_serializer="bytes")
    for name in args.topics:
        topic = app.topic(name, value_deserializer="bytes", key_deserializer="bytes")
        sdf = app.dataframe(topic)

        def one(value: bytes, key: bytes, timestamp: int, headers: object, ctx: MessageContext | None = None) -> bytes:
            from quixstreams import message_context

            c = message_context()
            return scorer.score(c.topic, c.partition, c.offset, value)

        sdf = sdf.apply(lambda value, key, ts, headers: one(value, key, ts, headers), metadata=True)
        sdf.to_topic(out)
    app.run()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("name", choices=["aiokafka-loop", "faust-agent", "quix-app"])
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--topics", required=True, type=lambda s: s.split(","))
    p.add_argument("--kinds", required=True, type=lambda s: [EventKind(k) for k in s.split(",")])
    p.add_argument("--repository", type=Path, default=Path("model_repository"))
    args = p.parse_args()
    scorer = PerEventScorer(args.repository, dict(zip(args.topics, args.kinds, strict=True)))
    if args.name == "aiokafka-loop":
        asyncio.run(aiokafka_loop(args, scorer))
    elif args.name == "faust-agent":
        faust_agent(args, scorer)
    else:
        quix_app(args, scorer)


if __name__ == "__main__":
    main()
