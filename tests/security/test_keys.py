"""System keys: issued by the hub and kept only as salted hashes, two valid at once
while a system rotates, config hashes instead of keys, and per-system rate limits."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from adapters.sink import RecordingSink
from hub.cli import app
from hub.config import load_config
from hub.keys import KeyRing, hash_line, new_key
from hub.ratelimit import RateLimits
from hub.settings import Settings
from hub.store.db import Database
from hub.store.models import system_keys
from tests.support import (
    DEST_A,
    KEYS,
    OPS_KEY,
    SENDER,
    ThreadedHub,
    note,
    wait_until,
    write_config,
)


@pytest.fixture
def sink() -> Any:
    with RecordingSink() as s:
        yield s


def sends(hub: ThreadedHub, key: str) -> int:
    with hub.client(key) as c:
        return int(c.post("/api/v1/messages", json=note([DEST_A])).status_code)


def test_rotation_keeps_two_keys_valid_and_stores_no_secret(
    tmp_path: Path, backend: dict[str, str], sink: RecordingSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, sink.url)
    settings = Settings(config=config, blob_dir=tmp_path / "blobs", **backend)
    monkeypatch.setenv("HUB_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("HUB_CONFIG", str(config))
    runner = CliRunner()

    def rotate(*extra: str) -> str:
        out = runner.invoke(app, ["systems", "rotate-key", SENDER, *extra])
        assert out.exit_code == 0, out.output
        return out.stdout.splitlines()[0]

    with ThreadedHub(settings) as hub:
        first = rotate()
        wait_until(lambda: sends(hub, first) == 202, timeout=10)
        second = rotate()
        wait_until(lambda: sends(hub, second) == 202, timeout=10)
        assert sends(hub, first) == 202  # both valid while the system switches
        third = rotate()
        wait_until(lambda: sends(hub, first) == 401, timeout=10)  # the oldest is retired
        assert sends(hub, second) == 202 and sends(hub, third) == 202
        rotate("--retire-previous")
        wait_until(lambda: sends(hub, third) == 401, timeout=10)
        assert sends(hub, second) == 401
        assert sends(hub, KEYS[SENDER]) == 202  # the config's key is another matter
        assert runner.invoke(app, ["systems", "rotate-key", "nope:none"]).exit_code != 0

        with hub.client(OPS_KEY) as ops:
            audit = ops.get("/api/v1/audit", params={"action": "system.rotate_key"}).json()
        assert len(audit["items"]) == 4
        assert all(e["target"] == SENDER for e in audit["items"])

    db = Database(settings.sqlalchemy_url())
    with db.engine.connect() as conn:
        stored = " ".join(str(v) for row in conn.execute(sa.select(system_keys)) for v in row)
    db.close()
    for key in (first, second, third):
        assert key.split(".", 1)[1] not in stored  # the secret is nowhere in the store
    listed = runner.invoke(app, ["systems", "keys", SENDER]).output
    assert listed.count("key_id") == 4 and first.split(".")[1] not in listed


def test_a_config_may_hold_a_keys_hash_instead_of_the_key(tmp_path: Path) -> None:
    key, key_id, salt, digest = new_key()
    path = write_config(tmp_path, "http://127.0.0.1:9")
    raw = yaml.safe_load(path.read_text("utf-8"))
    del raw["systems"][0]["api_key"]
    raw["systems"][0]["api_key_hash"] = hash_line(key_id, salt, digest)
    raw["operators"][0]["api_key_hash"] = hash_line(*new_key()[1:])
    path.write_text(yaml.safe_dump(raw), "utf-8")
    ring = KeyRing(load_config(path))
    found = ring.system(key)
    assert found is not None and found.id == SENDER
    assert ring.system(key[:-1] + ("A" if key[-1] != "A" else "B")) is None  # one char off
    assert ring.system(f"lgsp_{'0' * 16}.{key.split('.')[1]}") is None  # unknown id
    assert ring.operator(key) is None  # a system's key is not an operator's
    raw["systems"][0]["api_key_hash"] = "sha256$short"
    path.write_text(yaml.safe_dump(raw), "utf-8")
    with pytest.raises(Exception, match="api_key_hash of system"):
        load_config(path)


def test_rate_limit_answers_429_with_retry_after_and_takes_nothing(
    tmp_path: Path, sink: RecordingSink
) -> None:
    path = write_config(tmp_path, sink.url)
    raw = yaml.safe_load(path.read_text("utf-8"))
    raw["systems"][0]["rate_limit"] = {"per_second": 0.5, "burst": 3}
    path.write_text(yaml.safe_dump(raw), "utf-8")
    database = f"sqlite:///{tmp_path / 'hub.db'}"
    settings = Settings(config=path, database_url=database, blob_dir=tmp_path / "blobs")
    with ThreadedHub(settings) as hub, hub.client(KEYS[SENDER]) as c:
        answers = [c.post("/api/v1/messages", json=note([DEST_A])) for _ in range(5)]
        assert [r.status_code for r in answers] == [202, 202, 202, 429, 429]
        refused = answers[3]
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["status"] == 429 and "limit" in refused.json()["detail"]
        assert 1 <= int(refused.headers["retry-after"]) <= 2
        with hub.client(OPS_KEY) as ops:
            assert len(ops.get("/api/v1/messages").json()["items"]) == 3  # nothing taken
        with hub.client(KEYS[DEST_A]) as other:  # other systems are not limited
            assert other.post("/api/v1/messages", json=note([SENDER], source=DEST_A)).is_success


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    config = load_config_with_limit(per_second=2, burst=2)
    limits = RateLimits(config.systems, clock=lambda: now[0])
    limits.take(SENDER)
    limits.take(SENDER)
    with pytest.raises(Exception, match="over its limit") as caught:
        limits.take(SENDER)
    assert caught.value.retry_after == 1  # type: ignore[attr-defined]
    now[0] = 0.5  # one token back
    limits.take(SENDER)
    with pytest.raises(Exception, match="over its limit"):
        limits.take(SENDER)


def load_config_with_limit(per_second: float, burst: float) -> Any:
    import tempfile

    directory = Path(tempfile.mkdtemp())
    path = write_config(directory, "http://127.0.0.1:9")
    raw = yaml.safe_load(path.read_text("utf-8"))
    raw["systems"][0]["rate_limit"] = {"per_second": per_second, "burst": burst}
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return load_config(path)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1%25eth0]:8080/x",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://[::ffff:169.254.10.1]/x",
        # Numeric forms the resolver (inet_aton) reads as 169.254.169.254: decimal,
        # hex, octal, dotted hex, short dotted; then IPv6 forms carrying it.
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://0251.0376.0251.0376/",
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://169.254.43518/",
        "http://169.16689662/",
        "http://169.254.169.254./",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::1]/",
    ],
)
def test_endpoints_at_link_local_or_metadata_addresses_are_refused_at_load(
    tmp_path: Path, endpoint: str
) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    raw = yaml.safe_load(path.read_text("utf-8"))
    raw["systems"][1]["endpoint"] = endpoint
    path.write_text(yaml.safe_dump(raw), "utf-8")
    with pytest.raises(Exception, match=f"endpoint of {DEST_A} points at"):
        load_config(path)
    raw["systems"][1]["allow_link_local"] = True  # said explicitly: allowed
    path.write_text(yaml.safe_dump(raw), "utf-8")
    assert load_config(path).systems[DEST_A].endpoint == endpoint


@pytest.mark.parametrize(
    "host", ["2852039166", "0xa9fea9fe", "0251.0376.0251.0376", "169.254.43518", "169.16689662"]
)
def test_the_resolver_connectors_use_reads_numeric_hosts_as_the_guard_does(host: str) -> None:
    """httpx and aiohttp pass these hosts to getaddrinfo, which reaches 169.254.169.254:
    the reason the guard reads them with inet_aton's rules."""
    resolved = {info[4][0] for info in socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)}
    assert resolved == {"169.254.169.254"}  # refused at load: the test above
