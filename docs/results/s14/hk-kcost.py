"""The scoring loop's Kafka part alone, in one process of a tree (PYTHONPATH): read N preloaded
events as the loop does (fetch_inputs where the tree has it, else getmany + fetched_records),
then produce one score-like output per event with send_batched (2,000 a call), acks awaited.
Prints CPU us/event of each part. (helper H-K, session 14)

    python kcost.py preload BOOTSTRAP EVENTS          -> topics JSON on stdout
    python kcost.py run BOOTSTRAP TOPICS_JSON EVENTS
"""
import asyncio, json, sys, time, argparse


async def run(bootstrap, topics, events):
    from aiokafka import TopicPartition
    from scorer.config import KafkaSettings
    from scorer.events.structs import EventKind
    from scorer.kafka import make_consumer, make_producer, send_batched
    from scorer.kafka.admin import TopicSpec, ensure_topics
    import scorer.pipeline.source as source
    from scorer.pipeline.records import OutputRecord
    from scorer.service.gctune import tune_gc

    kinds = {t: EventKind(k) for t, k in topics.items()}
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    out_topic = "kcost-out"
    await ensure_topics(settings, [TopicSpec(out_topic, 3)])
    consumer = make_consumer(settings, [], group_id=None)
    producer = make_producer(settings)
    await consumer.start(); await producer.start()
    consumer.assign([TopicPartition(t, p) for t in topics for p in range(3)])
    fast = hasattr(source, "fetch_inputs")
    tune_gc()
    got, acks, cpu_in, cpu_out = 0, [], 0.0, 0.0
    c0 = time.process_time()
    w0 = time.perf_counter()
    while got < events:  # as the loop: a batch read, its outputs handed over, the next read
        t0 = time.process_time()
        if fast:
            fetched = await source.fetch_inputs(consumer, kinds, timeout_ms=100, max_records=4096)
        else:
            fetched = await consumer.getmany(timeout_ms=100, max_records=4096)
        batch, _ = source.fetched_records(fetched, kinds) if fetched else ([], {})
        t1 = time.process_time()
        got += len(batch)
        if batch:
            outputs = [OutputRecord(out_topic, r.value or b"", r.key) for r in batch]
            acks.append(asyncio.gather(*await send_batched(producer, outputs)))
        cpu_in, cpu_out = cpu_in + t1 - t0, cpu_out + time.process_time() - t1
    await asyncio.gather(*acks)
    c2 = time.process_time()
    w2 = time.perf_counter()
    await consumer.stop(); await producer.stop()
    print(json.dumps({"fast_fetch": fast, "events": got, "cpu_us": round((c2 - c0) / got * 1e6, 3), "wall_us": round((w2 - w0) / got * 1e6, 3),
                      "read_cpu_us": round(cpu_in / got * 1e6, 3), "hand_over_cpu_us": round(cpu_out / got * 1e6, 3)}))


def main():
    if sys.argv[1] == "preload":
        from scorer.bench.consume import _preload
        from scorer.bench.realistic import add_stream_arguments
        parser = argparse.ArgumentParser()
        add_stream_arguments(parser)
        ns = parser.parse_args(["--stream", "realistic"])
        ns.bootstrap, ns.events, ns.partitions = sys.argv[2], int(sys.argv[3]), 3
        print(json.dumps(asyncio.run(_preload(ns))))
    else:
        asyncio.run(run(sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4])))


main()
