"""The same feature pipeline against production engines: Feast's Redis online store."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from tests.integration.conftest import day, last_landed_temp, online_values_for
from tests.support import throwaway_redis_dbs

pytestmark = pytest.mark.integration
REDIS = ("127.0.0.1", 6379)


@pytest.fixture(scope="module")
def redis_settings(tmp_path_factory):
    from airloop.settings import Settings

    home: Path = tmp_path_factory.mktemp("redis-home")
    with throwaway_redis_dbs(1) as [db]:  # the production profile's online store
        yield Settings(
            home=home, feast_online_store="redis", feast_redis_url=f"127.0.0.1:6379,db={db}"
        )


def test_pipeline_materialises_into_redis(redis_settings, flights) -> None:
    from airloop.data.replay import land_window
    from airloop.features.pipeline import run_interval

    land_window(flights, redis_settings, date(2013, 1, 1), date(2013, 1, 3))
    for d in (1, 2):
        run_interval(day(d), day(d + 1), flights, redis_settings)
    online = online_values_for(redis_settings, flights)
    assert online["origin_weather__temp"][0] == pytest.approx(
        last_landed_temp(redis_settings, "2013-01-02.csv")
    )
    assert online["carrier_delays__count_1d"][0] > 0
    assert not (redis_settings.feast_dir / "online.db").exists(), "nothing may fall back to SQLite"
