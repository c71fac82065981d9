"""The load the benchmarks put on a server: keep-alive clients in threads, latencies and rate."""

from __future__ import annotations

import http.client
import itertools
import os
import statistics
import threading
import time
from typing import Any

from airloop.usecase import load_usecase

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "400"))
WARMUP = 50
# 2013's first flight, as the flights use case declares its example request (events.example):
# its entity keys, and its request-time fields.
_FLIGHTS = load_usecase("flights")
_EXAMPLE: dict[str, Any] = _FLIGHTS.events.example or {}
FIRST_FLIGHT = {key: _EXAMPLE[key] for key in _FLIGHTS.entity_keys}
FIRST_FLIGHT_FIELDS = {k: v for k, v in _EXAMPLE.items() if k not in FIRST_FLIGHT}


class Client:
    """One keep-alive connection per thread, like a real client pool."""

    def __init__(self, port: int, token: str | None = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", path, body=body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{path} -> {resp.status}: {data[:200]!r}")
        return data


def poster(ports: int | list[int], path: str, body: bytes, token: str | None = None) -> Any:
    """A factory of calls, each thread with a connection of its own; with several ports, the
    threads are spread over them in turn (a round-robin load balancer's effect)."""
    turn = itertools.cycle(ports if isinstance(ports, list) else [ports])
    lock = threading.Lock()

    def factory() -> Any:
        with lock:
            port = next(turn)
        client = Client(port, token)
        return lambda: client.post(path, body)

    return factory


def measure(call_factory: Any, concurrency: int) -> dict[str, float]:
    """Latency percentiles and throughput for ``REQUESTS`` calls split over ``concurrency`` threads."""
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = REQUESTS // concurrency

    def worker() -> None:
        call = call_factory()
        for _ in range(WARMUP // concurrency):
            call()
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            call()
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
    }
