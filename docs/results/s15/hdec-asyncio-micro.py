import asyncio, sys
from scorer.pipeline.turns import serve_io
async def infer(): return 1
async def timed(): return await infer()
async def tasks_only():
    pend = [asyncio.create_task(timed()) for k in range(3)]
    await asyncio.gather(asyncio.gather(*pend), asyncio.gather(return_exceptions=True))
async def serve_only():
    for _ in range(4): await serve_io()
async def inline():
    for _ in range(3): await timed()
async def main(name, n):
    f = globals()[name]
    for _ in range(n): await f()
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
