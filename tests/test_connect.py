"""Redis URLs: every form is checked before connecting, and no password is ever shown."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aioworker import ConfigError, Worker
from aioworker.connect import mask_text, mask_url, parse_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://app:s3cret@h:6379/0", "redis://app:***@h:6379/0"),
        ("rediss://app:s3cret@h:6380/1", "rediss://app:***@h:6380/1"),
        ("redis://h:6379/0?password=s3cret", "redis://h:6379/0?password=***"),
        ("redis://h/0?db=1&password=s3cret&x=1", "redis://h/0?db=1&password=***&x=1"),
        ("unix:///run/redis.sock?db=2&password=s3cret", "unix:///run/redis.sock?db=2&password=***"),
        (
            "redis+sentinel://:s3cret@a:26379,b:26380/mymaster/0?sentinel_password=sent1nel",
            "redis+sentinel://:***@a:26379,b:26380/mymaster/0?sentinel_password=***",
        ),
        ("redis://app:p@ss:w0rd@h:1/0", "redis://app:***@h:1/0"),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis://[::1:6379", "redis://[::1:6379"),
    ],
)
def test_every_url_form_is_shown_with_its_passwords_masked(url: str, shown: str) -> None:
    assert mask_url(url) == shown


def test_an_error_text_loses_every_secret_of_its_url() -> None:
    url = "redis://app:s3cret@h:1/0?sentinel_password=other-secret"
    text = mask_text(f"Error connecting to {url}: bad s3cret and other-secret", url)
    assert "s3cret" not in text and "other-secret" not in text
    assert "redis://app:***@h:1/0" in text


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis://localhost:99999/0", "Port out of range"),
        ("redis://localhost:abc/0", "Port could not be cast"),
        ("http://localhost:6379/0", "unknown scheme http://"),
        ("redis://[::1:6379/0", "Invalid IPv6 URL"),
        ("localhost:6379", "expected redis://"),
        ("redis://localhost:6379/zero", "database must be a number"),
        ("redis:///0", "no host"),
        ("redis+sentinel://:pw@a:26379", "no service name"),
        ("redis+sentinel://:pw@a:2x/mymaster", "Port could not be cast"),
    ],
)
def test_a_malformed_url_is_a_config_error_naming_the_fault(url: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why):
        parse_url(url)


def test_sentinel_urls_and_the_sentinels_option_name_the_same_primary() -> None:
    t = parse_url("redis+sentinel://u:pw@a:1,b/mymaster/2?sentinel_password=sp")
    assert t.sentinels == (("a", 1), ("b", 26379))
    assert (t.service, t.db, t.username, t.password) == ("mymaster", 2, "u", "pw")
    assert t.sentinel_kwargs == {"password": "sp"}
    same = parse_url("redis://u:pw@mymaster/2", [("a", 1), ("b", 26379)])
    assert (same.sentinels, same.service, same.db, same.password) == (
        t.sentinels,
        "mymaster",
        2,
        "pw",
    )


async def test_a_malformed_url_fails_at_first_use_with_a_config_error(prefix: str) -> None:
    worker = Worker("redis://:s3cret@localhost:99999/0", prefix=prefix)
    with pytest.raises(ConfigError) as caught:
        await worker.client.broker.connect()
    assert "s3cret" not in str(caught.value)
    await worker.close()


@pytest.mark.parametrize("url", ["http://:s3cret@localhost:6379", "redis://:s3cret@[::1:6379/0"])
def test_the_cli_exits_2_with_one_line_for_a_malformed_url(url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aioworker", "info", "tests.apps.basic:worker", "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "s3cret" not in proc.stderr + proc.stdout
    assert "invalid Redis URL" in proc.stderr


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?password=s3cret-pw",
        "redis://app:s3cret-pw@127.0.0.1:1/0",
        "redis+sentinel://:s3cret-pw@127.0.0.1:1/mymaster/0?sentinel_password=s3cret-pw",
    ],
)
def test_the_exit_3_error_shows_no_password(url: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "aioworker", "info", "tests.apps.basic:worker", "--redis-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert "***" in proc.stderr and "Traceback" not in proc.stderr
