# Per request type: prepare / encode / write / rest of aiokafka's AIOKafkaConnection.send, main-thread CPU, dumped at exit to
# /tmp/mdprobe/req.<pid>.txt. Used as a sitecustomize: mkdir /tmp/mdprobe; cp this /tmp/mdprobe/sitecustomize.py;
# MDPROBE=1 PYTHONPATH=/tmp/mdprobe scorer bench ... (every process the bench starts inherits it).
import os, time, atexit, collections, struct
if os.environ.get("MDPROBE"):
    import aiokafka.conn as _c
    from aiokafka.util import wait_for
    acc = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
    def send(self, request, expect_response=True):
        k = type(request).__name__; a = acc[k]; a[0] += 1
        t0 = time.thread_time()
        request_struct = request.prepare(self._versions)
        t1 = time.thread_time()
        correlation_id = self._next_correlation_id()
        header = request_struct.build_request_header(correlation_id=correlation_id, client_id=self._client_id)
        message = header.encode() + request_struct.encode()
        size = struct.pack(">i", len(message))
        t2 = time.thread_time()
        self._writer.write(size + message)
        t3 = time.thread_time()
        if not expect_response:
            r = self._writer.drain()
        else:
            fut = self._loop.create_future()
            self._requests.append((correlation_id, request_struct, fut))
            r = wait_for(fut, self._request_timeout)
        t4 = time.thread_time()
        a[1] += t1 - t0; a[2] += t2 - t1; a[3] += t3 - t2; a[4] += t4 - t3
        return r
    _c.AIOKafkaConnection.send = send
    def dump():
        with open(f"/tmp/mdprobe/req.{os.getpid()}.txt", "w") as f:
            for k, (n, p, e, w, r) in sorted(acc.items(), key=lambda kv: -kv[1][0]):
                f.write(f"{k:24s} {n:6d}  prepare {p/n*1e6:6.1f}  encode {e/n*1e6:6.1f}  write {w/n*1e6:6.1f}  rest {r/n*1e6:6.1f} us\n")
    atexit.register(dump)
