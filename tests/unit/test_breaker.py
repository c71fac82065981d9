"""The serving API's breaker on its online store: fail fast while it is known down, one caller
tries it again after the wait, a success closes it."""

from __future__ import annotations

import threading

import pytest

from airloop.serving.breaker import Breaker, BreakerOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fails() -> None:
    raise TimeoutError("Timeout reading from 127.0.0.1:6390")


def test_after_a_failure_calls_fail_at_once_with_the_reason_until_the_wait_is_over():
    clock, calls = Clock(), []
    breaker = Breaker(retry_seconds=5.0, clock=clock)
    with pytest.raises(TimeoutError):
        breaker.call(fails)
    assert breaker.is_open

    clock.now += 4.9
    with pytest.raises(BreakerOpen, match=r"TimeoutError: Timeout reading.*\(5 s ago"):
        breaker.call(lambda: calls.append("called"))
    assert calls == []  # the store was not touched

    clock.now += 0.2  # the wait is over: this caller tries again, and it answers
    assert breaker.call(lambda: "answered") == "answered"
    assert not breaker.is_open
    assert breaker.call(lambda: "again") == "again"


def test_a_failed_retry_starts_the_wait_again():
    clock = Clock()
    breaker = Breaker(retry_seconds=5.0, clock=clock)
    with pytest.raises(TimeoutError):
        breaker.call(fails)
    clock.now += 6
    with pytest.raises(TimeoutError):  # tried, failed again
        breaker.call(fails)
    clock.now += 1
    with pytest.raises(BreakerOpen):
        breaker.call(lambda: "not called")


def test_while_one_caller_tries_the_store_again_the_others_fail_fast():
    clock = Clock()
    breaker = Breaker(retry_seconds=5.0, clock=clock)
    with pytest.raises(TimeoutError):
        breaker.call(fails)
    clock.now += 6
    trying, release = threading.Event(), threading.Event()

    def slow_answer() -> str:
        trying.set()
        release.wait(10)
        return "answered"

    results: list[str] = []
    probe = threading.Thread(target=lambda: results.append(breaker.call(slow_answer)))
    probe.start()
    assert trying.wait(10)
    with pytest.raises(BreakerOpen):  # the store is being tried: no second caller waits on it
        breaker.call(lambda: "not called")
    release.set()
    probe.join(10)
    assert results == ["answered"] and not breaker.is_open


def test_a_failure_that_is_not_an_outage_leaves_the_breaker_closed():
    breaker = Breaker(retry_seconds=5.0, clock=Clock())

    def refused() -> None:
        raise ValueError("a value the store cannot take")

    with pytest.raises(ValueError):
        breaker.call(refused)
    assert not breaker.is_open
    assert breaker.call(lambda: "answered") == "answered"


def test_the_serving_api_trips_on_redis_outages():
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from airloop.serving.predict import store_outages

    outages = store_outages()
    assert issubclass(RedisTimeoutError, outages) and issubclass(RedisConnectionError, outages)
    assert not issubclass(ValueError, outages)
