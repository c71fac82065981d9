"""The serving API's online lookups are bounded, and its errors name the store without secrets."""

from __future__ import annotations

from airloop.features.store import bounded_lookups, online_store_name
from airloop.settings import Settings


def test_the_serving_api_gets_socket_timeouts_on_redis_and_an_operators_own_win() -> None:
    plain = Settings(feast_online_store="redis", feast_redis_url="10.0.0.5:6379,db=2")
    assert bounded_lookups(plain).feast_redis_url == (
        "10.0.0.5:6379,db=2,socket_timeout=2,socket_connect_timeout=2"
    )
    assert plain.feast_redis_url == "10.0.0.5:6379,db=2"  # the settings given are untouched
    own = Settings(feast_online_store="redis", feast_redis_url="r:6379,socket_timeout=0.5")
    assert (
        bounded_lookups(own).feast_redis_url == "r:6379,socket_timeout=0.5,socket_connect_timeout=2"
    )
    sqlite = Settings(feast_online_store="sqlite")
    assert bounded_lookups(sqlite) is sqlite


def test_the_online_store_is_named_by_its_address_never_its_password() -> None:
    url = "redis.internal:6380,db=1,password=s3cret-value"
    name = online_store_name(Settings(feast_online_store="redis", feast_redis_url=url))
    assert name == "Redis at redis.internal:6380"
    sqlite = Settings(feast_online_store="sqlite")
    assert online_store_name(sqlite) == f"SQLite at {sqlite.online_store_path}"
