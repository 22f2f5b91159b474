"""The throwaway servers of ``tests/own_services.py``: they start, lose or keep
their data as a crash or a shutdown would, and come back on the same port."""

from __future__ import annotations

import pytest

from tests.conftest import missing_service
from tests.own_services import OwnPostgres, OwnRedis, ServiceBinaryMissing


def test_own_redis_loses_its_keys_when_killed_and_comes_back_on_its_port(
    own_redis: OwnRedis,
) -> None:
    import redis

    port = own_redis.port
    client = redis.Redis.from_url(own_redis.url, socket_timeout=2)
    client.set("k", "v")
    assert client.get("k") == b"v"

    own_redis.kill()
    with pytest.raises(redis.ConnectionError):
        client.get("k")

    own_redis.start()
    assert own_redis.port == port
    assert client.get("k") is None
    client.close()


def test_own_postgres_keeps_its_rows_across_a_stop_and_comes_back_on_its_port(
    own_postgres: OwnPostgres,
) -> None:
    import psycopg

    url = own_postgres.create_database("kept")
    assert own_postgres.django_database("kept")["PORT"] == own_postgres.port
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n int)")
        conn.execute("INSERT INTO t VALUES (42)")

    own_postgres.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=1)

    port = own_postgres.port
    own_postgres.start()
    assert own_postgres.port == port
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT n FROM t").fetchall() == [(42,)]
    with psycopg.connect(own_postgres.dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_own_postgres_is_removed_on_exit() -> None:
    try:
        server = OwnPostgres()
    except ServiceBinaryMissing as exc:
        missing_service(str(exc))
    with server:
        assert server.running
    assert not server.dir.exists()
