"""HTTP calls to airloop's own servers (the serving API, Airflow's REST API): JSON in, JSON out."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from http import HTTPStatus
from typing import Any


class HttpError(Exception):
    """The server answered with an error status; ``body`` is its JSON answer, or its text.

    The message is the server's own: its status with the status's name, and the reason its
    answer gives (:func:`reason_of`), so a 409 reads as a conflict, not as a failure to connect.
    """

    def __init__(self, method: str, url: str, status: int, body: Any) -> None:
        super().__init__(f"{method} {url} → HTTP {status_line(status)}: {reason_of(body)[:500]}")
        self.method, self.url, self.status, self.body = method, url, status, body

    @property
    def refused(self) -> bool:
        """The server is up and refused this request (a 4xx): asking again will not help, and
        the reason is in the answer. A 5xx is the server's own failure."""
        return 400 <= self.status < 500


def status_line(status: int) -> str:
    """``409 Conflict``: the status with its name, as servers write it."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def reason_of(body: Any) -> str:
    """What an error answer says, in its own words, from the shapes the stack's servers use:
    FastAPI's ``{"detail": "..."}``, its validation errors ``{"detail": [{"loc", "msg"}]}``,
    Airflow's database errors ``{"detail": {"reason", "message"}}``, MLflow's and the serving
    API's ``{"error_code", "message"}``; anything else as JSON or text."""
    if isinstance(body, str):
        return body.strip() or "(empty answer)"
    detail = body.get("detail", body) if isinstance(body, dict) else body
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
        return "; ".join(
            f"{'.'.join(str(part) for part in d.get('loc', []))}: {d.get('msg', d)}" for d in detail
        )
    if isinstance(detail, dict):
        said = [str(detail[k]) for k in ("reason", "error_code", "message") if detail.get(k)]
        if said:
            return ": ".join(said)
    return json.dumps(body)


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
    req = urllib.request.Request(web_url(url), data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310 # web_url()
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            answer: Any = json.loads(raw)
        except ValueError:
            answer = raw.decode(errors="replace")
        raise HttpError(method, url, exc.code, answer) from None
    return json.loads(raw) if raw else None


def web_url(url: str) -> str:
    """The URL, if it is http(s): airloop talks only to web servers, never ``file:`` or other
    schemes urllib would also open."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: not an http(s) URL")
    return url


def probe(url: str, timeout: float = 5.0) -> str | None:
    """None when a URL answers with a 2xx status now; else what happened, for a person."""
    try:
        with urllib.request.urlopen(web_url(url), timeout=timeout) as resp:  # nosec B310 # web_url()
            return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except ValueError as exc:  # not a web URL
        return str(exc)
    except (OSError, urllib.error.URLError) as exc:
        return str(getattr(exc, "reason", exc))


def answers(url: str, timeout: float = 5.0) -> bool:
    """Whether a URL answers with a 2xx status now."""
    return probe(url, timeout) is None
