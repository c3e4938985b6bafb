"""Security: ACL users, TLS (rediss://), masked passwords, JSON payloads (never pickle)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from aioworker import BrokerUnavailable, JobContext, Worker
from aioworker.keys import QueueKeys
from tests.redis_procs import missing_binaries, pick_free_port, server_binary

pytestmark = pytest.mark.skipif(
    bool(missing_binaries(server_binary())), reason="needs redis-server"
)


def _start(args: list[str], ping: redis.Redis) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [server_binary(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            ping.ping()
            return proc
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"redis-server {args} did not start") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[int]:
    """A server whose default user is off and whose one user is ``worker``/``s3cret-pw``."""
    port = pick_free_port()
    client = redis.Redis(host="127.0.0.1", port=port, username="worker", password="s3cret-pw")
    proc = _start(
        [
            "--port",
            str(port),
            "--dir",
            str(tmp_path),
            *("--user", "default", "off"),
            *("--user", "worker", "on", ">s3cret-pw", "~*", "&*", "+@all"),
        ],
        client,
    )
    yield port
    client.close()
    _stop(proc)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A TLS-only server with a certificate signed by a throwaway CA; yields (port, CA file)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    key = ("-newkey", "rsa:2048", "-nodes")
    openssl(
        "req", "-x509", *key, "-days", "1", "-subj", "/CN=ca", "-keyout", "ca.key", "-out", "ca.crt"
    )
    openssl("req", *key, "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    sign = ("-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-extfile", "san.ext")
    openssl("x509", "-req", "-in", "server.csr", *sign, "-days", "1", "-out", "server.crt")
    port = pick_free_port()
    client = redis.Redis(
        host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(tmp_path / "ca.crt")
    )
    proc = _start(
        [
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--dir",
            str(tmp_path),
            "--tls-cert-file",
            str(tmp_path / "server.crt"),
            "--tls-key-file",
            str(tmp_path / "server.key"),
            "--tls-ca-cert-file",
            str(tmp_path / "ca.crt"),
            "--tls-auth-clients",
            "no",
        ],
        client,
    )
    yield port, tmp_path / "ca.crt"
    client.close()
    _stop(proc)


def _app(url: str, prefix: str, **options: object) -> Worker:
    worker = Worker(url, prefix=prefix, **options)  # type: ignore[arg-type]

    @worker.task(name="double")
    async def double(ctx: JobContext, n: int) -> int:
        return n * 2

    return worker


async def test_a_worker_runs_jobs_as_an_acl_user(acl_server: int, prefix: str) -> None:
    worker = _app(f"redis://worker:s3cret-pw@127.0.0.1:{acl_server}/0", prefix)
    try:
        job = await worker.enqueue("double", 21)
        stats = await worker.run(burst=True, handle_signals=False)
        assert stats["complete"] == 1
        assert await job.result(timeout=5) == 42
    finally:
        await worker.close()


async def test_a_wrong_password_is_one_clear_error_with_the_password_masked(
    acl_server: int, prefix: str
) -> None:
    worker = _app(f"redis://worker:wrong-pw@127.0.0.1:{acl_server}/0", prefix)
    with pytest.raises(BrokerUnavailable) as caught:
        await worker.enqueue("double", 1)
    message = str(caught.value)
    assert "wrong-pw" not in message
    assert f"redis://worker:***@127.0.0.1:{acl_server}/0" in message
    await worker.close()


async def test_a_worker_runs_jobs_over_tls(tls_server: tuple[int, Path], prefix: str) -> None:
    port, ca = tls_server
    worker = _app(f"rediss://127.0.0.1:{port}/0", prefix, redis_options={"ssl_ca_certs": str(ca)})
    try:
        job = await worker.enqueue("double", 5)
        stats = await worker.run(burst=True, handle_signals=False)
        assert stats["complete"] == 1
        assert await job.result(timeout=5) == 10
    finally:
        await worker.close()


async def test_tls_with_an_untrusted_certificate_is_refused(
    tls_server: tuple[int, Path], prefix: str
) -> None:
    port, _ca = tls_server
    worker = _app(f"rediss://127.0.0.1:{port}/0", prefix)  # the system CAs do not know it
    with pytest.raises(BrokerUnavailable, match=r"rediss://127\.0\.0\.1"):
        await worker.enqueue("double", 1)
    await worker.close()


async def test_payloads_are_json_and_never_pickle(redis_url: str, prefix: str) -> None:
    worker = _app(redis_url, prefix)
    try:
        job = await worker.enqueue("double", 7)
        raw = redis.Redis.from_url(redis_url).hget(QueueKeys(prefix, "default").jobs, job.id)
        assert isinstance(raw, bytes)
        stamp, _, body = raw.partition(b"|")
        assert stamp.isdigit()
        assert body == b'{"t":"double","a":[7],"k":{}}'
        assert not body.startswith(b"\x80")  # a pickle stream starts with its protocol byte
    finally:
        await worker.close()
