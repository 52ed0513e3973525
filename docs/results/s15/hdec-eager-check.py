import asyncio, time
from scorer.pipeline.inference import eager
async def sync_ok(): return 1
async def sync_fail(): raise ValueError("x")
async def suspends():
    await asyncio.sleep(0)
    r = await asyncio.to_thread(lambda: 41)
    await asyncio.sleep(0.01)
    return r + 1
async def suspends_fail():
    await asyncio.sleep(0); raise KeyError("k")
async def long():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return "cancel seen"
async def main():
    f = eager(sync_ok()); assert f.done() and f.result() == 1
    f = eager(sync_fail()); assert f.done() and isinstance(f.exception(), ValueError)
    f = eager(suspends()); assert not f.done(); assert await f == 42
    f = eager(suspends_fail())
    try: await f; raise AssertionError
    except KeyError: pass
    f = eager(long()); await asyncio.sleep(0.01); f.cancel()
    try: print("cancel ->", await f)
    except asyncio.CancelledError: print("cancel -> CancelledError")
    t = asyncio.create_task(long()); await asyncio.sleep(0.01); t.cancel()
    try: print("task cancel ->", await t)
    except asyncio.CancelledError: print("task cancel -> CancelledError")
    print("ok")
asyncio.run(main())
