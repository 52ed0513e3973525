import asyncio, json, collections, sys
from aiokafka import TopicPartition
from aiokafka.record.memory_records import MemoryRecords
from scorer.config import KafkaSettings
from scorer.kafka.clients import make_consumer
import scorer.kafka.fetch as f
sizes = collections.Counter()
orig = f._Rows._next_batch
def spy(self, records):
    b = orig(self, records)
    if b is not None:
        sizes[b.last_offset_delta + 1] += 1
    return b
f._Rows._next_batch = spy
from scorer.pipeline.source import fetch_inputs, fetched_records
from scorer.events.structs import EventKind
async def main():
    topics = {t: EventKind(k) for t, k in json.loads(sys.argv[1]).items()}
    c = make_consumer(KafkaSettings(bootstrap_servers="127.0.0.1:9092"), [], group_id=None)
    await c.start()
    c.assign([TopicPartition(t, p) for t in topics for p in range(3)])
    got = 0
    while got < 50000:
        got += len(fetched_records(await fetch_inputs(c, topics, timeout_ms=100, max_records=2000), topics)[0])
    await c.stop()
    tot = sum(k * v for k, v in sizes.items()); n = sum(sizes.values())
    print("batches", n, "records", tot, "mean records/batch", tot / n, sizes.most_common(8))
asyncio.run(main())
