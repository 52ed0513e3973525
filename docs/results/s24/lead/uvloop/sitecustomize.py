import asyncio, os
if os.environ.get("UVLOOP") == "1":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
