# Per response type: aiokafka's AIOKafkaConnection._handle_frame (header, body decode, the future set), main-thread CPU, dumped at
# exit to /tmp/mdprobe/resp.<pid>.txt. Used as a sitecustomize, as request_probe.py.
import os, time, atexit, collections
if os.environ.get("MDPROBE"):
    import aiokafka.conn as _c
    _handle = _c.AIOKafkaConnection._handle_frame
    acc = collections.defaultdict(lambda: [0, 0.0, 0])
    def handle(self, resp):
        k = type(self._requests[0][1]).__name__ if self._requests else "?"
        t = time.thread_time(); r = _handle(self, resp); a = acc[k]; a[0] += 1; a[1] += time.thread_time() - t; a[2] += len(resp)
        return r
    _c.AIOKafkaConnection._handle_frame = handle
    def dump():
        with open(f"/tmp/mdprobe/resp.{os.getpid()}.txt", "w") as f:
            for k, (n, s, b) in sorted(acc.items(), key=lambda kv: -kv[1][0]):
                f.write(f"{k:28s} {n:6d}  decode {s/n*1e6:7.1f} us  {b/n:9.0f} B\n")
    atexit.register(dump)
