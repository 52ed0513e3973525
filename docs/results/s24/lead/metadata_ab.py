"""ensure_topics and topic_partition_list for the scorer's own few topics on a broker holding N other
topics: wall and main-thread CPU, this tree's scorer.kafka.admin against another's (PYTHONPATH order).
    .venv/bin/python docs/results/s24/lead/metadata_ab.py N ROUNDS OLD_TREE  (the local broker on 9092; N=0:
    add none, N is then only the label; the broker keeps what earlier runs added)"""
import asyncio, importlib, subprocess, sys, time, uuid

N, ROUNDS, OLD = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
CHILD = r'''
import asyncio, sys, time
from scorer.config import KafkaSettings
from scorer.kafka import TopicSpec, ensure_topics, topic_partition_list
async def main():
    k = KafkaSettings(bootstrap_servers="127.0.0.1:9092")
    names = [f"mdab.{sys.argv[1]}.{i}" for i in range(4)]
    await ensure_topics(k, [TopicSpec(n, 1) for n in names])  # created once: then the steady case
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(5):
        await ensure_topics(k, [TopicSpec(n, 1) for n in names])
        await topic_partition_list(k, names)
    print(f"{(time.thread_time() - c0) / 5 * 1e3:.1f} {(time.perf_counter() - t0) / 5 * 1e3:.1f}")
asyncio.run(main())
'''

async def make(n: int, prefix: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:9092")
    await admin.start()
    try:
        for i in range(0, n, 200):
            await admin.create_topics([NewTopic(f"{prefix}.{j}", 1, 1) for j in range(i, min(n, i + 200))])
    finally:
        await admin.close()

prefix = f"mdfill.{uuid.uuid4().hex[:6]}"
if N:
    asyncio.run(make(N, prefix))
    time.sleep(2)
for r in range(ROUNDS):
    for name, tree in (("new", "."), ("old", OLD)):
        out = subprocess.run([sys.executable, "-c", CHILD, f"{name}{r}"], env={"PYTHONPATH": tree, "PATH": "/usr/bin"},
                             capture_output=True, text=True, cwd=tree)  # (-c puts the cwd first on sys.path)
        cpu, wall = out.stdout.split() if out.returncode == 0 else ("?", out.stderr[-300:])
        print(f"round {r} {name}: ensure_topics + topic_partition_list of 4 topics among {N} others: "
              f"{cpu} ms CPU, {wall} ms wall (mean of 5)", flush=True)
