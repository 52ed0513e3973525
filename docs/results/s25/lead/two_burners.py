"""What two busy processes get of this VM's two vCPUs: a pure-Python loop timed alone, then two at once."""
import multiprocessing as mp
import time


def burn(_: int) -> float:
    t = time.perf_counter()
    x = 0
    for i in range(30_000_000):
        x += i
    return time.perf_counter() - t


if __name__ == "__main__":
    for rnd in range(3):
        for k in (1, 2):
            with mp.Pool(k) as pool:
                t = time.perf_counter()
                each = pool.map(burn, range(k))
                wall = time.perf_counter() - t
            print(f"round {rnd + 1}: {k} at once: each {', '.join(f'{s:.2f}' for s in each)} s; "
                  f"work per second {k * 30e6 / max(each) / 1e6:.1f}M iterations")
