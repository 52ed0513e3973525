# python docs/results/s20/lead/consume_ab.py "$(python docs/results/s20/lead/preload.py 200000)" 200000 8   (a broker on 127.0.0.1:9092)
"""A/B of aiokafka's connection reader limit on the scorer's consume path (fresh process per run)."""
import asyncio, json, os, subprocess, sys
if len(sys.argv) > 1 and sys.argv[1] == "child":
    limit = int(sys.argv[2])
    import aiokafka.conn
    if limit:
        aiokafka.conn.READER_LIMIT = limit
    maxsize = int(os.environ.get("RECV_MAX", "0"))
    if maxsize:
        import asyncio.selector_events as se
        se._SelectorSocketTransport.max_size = maxsize
    from scorer.bench.consume import _aiokafka
    from scorer.events.structs import EventKind
    topics = {t: EventKind(k) for t, k in json.loads(sys.argv[3]).items()}
    n, cpu, wall = asyncio.run(_aiokafka("127.0.0.1:9092", topics, 3, int(sys.argv[4]), False, False))
    print(json.dumps({"limit": limit, "recv": maxsize, "events": n, "cpu_us": round(cpu / n * 1e6, 3), "wall_us": round(wall / n * 1e6, 3)}))
    sys.exit()
topics, events, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
variants = [(0, 0), (1 << 22, 0)]
for r in range(rounds):
    for limit, recv in variants:
        env = dict(os.environ, RECV_MAX=str(recv))
        out = subprocess.run([sys.executable, __file__, "child", str(limit), topics, events], capture_output=True, text=True, env=env)
        print(out.stdout.strip() or out.stderr[-800:], flush=True)
