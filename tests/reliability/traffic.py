"""Requests to the serving API during a fault: every answer kept, with its phase and time."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# An answer the caller must accept in a phase; anything else is a wrong answer.
Check = Callable[[httpx.Response], str | None]


@dataclass
class Tally:
    """Every request made: (phase, path, status, seconds); and each wrong answer, described."""

    base_url: str
    token: str = field(repr=False)  # never in a failure's message
    rows: list[tuple[str, str, int, float]] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            timeout=120.0,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def call(
        self, client: httpx.Client, phase: str, method: str, path: str, body: Any = None
    ) -> httpx.Response:
        started = time.monotonic()
        response = client.request(method, path, json=body)
        self.rows.append((phase, path, response.status_code, time.monotonic() - started))
        return response

    def expect(
        self,
        client: httpx.Client,
        phase: str,
        method: str,
        path: str,
        check: Check,
        body: Any = None,
    ) -> httpx.Response:
        response = self.call(client, phase, method, path, body)
        problem = check(response)
        if problem is not None:
            self.wrong.append(f"{phase} {method} {path}: {problem}: {response.text[:500]}")
        return response

    def statuses(self, phase: str | None = None) -> Counter[tuple[str, int]]:
        return Counter((path, status) for p, path, status, _ in self.rows if phase in (None, p))

    def slowest(self, phase: str) -> float:
        return max((s for p, _, _, s in self.rows if p == phase), default=0.0)

    def in_threads(
        self, clients: int, seconds: float, round_: Callable[[httpx.Client], None]
    ) -> int:
        """``round_`` called over and over by ``clients`` threads, each with its own client, for
        ``seconds``; the number of rounds. A round that raised is a wrong answer."""
        deadline = time.monotonic() + seconds
        rounds = Counter[str]()

        def loop(name: str) -> None:
            with self.client() as client:
                while time.monotonic() < deadline:
                    try:
                        round_(client)
                    except Exception as exc:  # a request that got no answer at all
                        self.wrong.append(f"{name}: {type(exc).__name__}: {exc}")
                    rounds[name] += 1

        threads = [threading.Thread(target=loop, args=(f"client-{i}",)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(rounds.values())


def status_is(status: int, also: Callable[[Any], str | None] | None = None) -> Check:
    """The answer has this status (and, with ``also``, its JSON body passes that check)."""

    def check(response: httpx.Response) -> str | None:
        if response.status_code != status:
            return f"HTTP {response.status_code}, expected {status}"
        return also(response.json()) if also is not None else None

    return check
