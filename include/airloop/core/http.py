"""HTTP calls to airloop's own servers (the serving API, Airflow's REST API): JSON in, JSON out."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class HttpError(Exception):
    """The server answered with an error status; ``body`` is its JSON answer, or its text."""

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        detail = body if isinstance(body, str) else json.dumps(body)
        super().__init__(f"{method} {url} → HTTP {status}: {detail[:500]}")
        self.status, self.body = status, body


def request_json(
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = None,
    timeout: float = 30.0,
) -> Any:
    """One request; the parsed JSON answer (None when empty). Errors raise :class:`HttpError`;
    an unreachable server raises ``OSError`` (``urllib.error.URLError``)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        raise HttpError(method, url, exc.code, answer) from None
    return json.loads(raw) if raw else None


def probe(url: str, timeout: float = 5.0) -> str | None:
    """None when a URL answers with a 2xx status now; else what happened, for a person."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except (OSError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))


def answers(url: str, timeout: float = 5.0) -> bool:
    """Whether a URL answers with a 2xx status now."""
    return probe(url, timeout) is None
