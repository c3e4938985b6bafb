"""ECS task scale-in protection against a local stand-in for the ECS agent's HTTP endpoint."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from aioworker import Backoff, JobContext, Worker
from aioworker.ecs import EcsTaskProtection

PATH = "/task-protection/v1/state"
ENABLE_30 = {"ProtectionEnabled": True, "ExpiresInMinutes": 30}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAgent:
    """Records every request; answers ``status`` (or garbage when ``garbage`` is set)."""

    status: int = 200
    garbage: bool = False
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path, _ = (await reader.readline()).decode().split(" ", 2)
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            raw = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Request(method, path, headers, json.loads(raw) if raw else None))
            if self.garbage:
                writer.write(b"nonsense\r\n\r\n")
            else:
                body = b'{"protection":{}}'
                writer.write(
                    f"HTTP/1.1 {self.status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                    + body
                )
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    fake = FakeAgent()
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        server.close()
        await server.wait_closed()


def closed_port() -> int:
    """A local port nothing listens on (bound and released at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


async def test_busy_enables_and_idle_disables_protection(agent: FakeAgent) -> None:
    protection = EcsTaskProtection(expires_in_minutes=45, agent_uri=agent.uri)
    await protection.on_busy()
    await protection.on_idle()

    assert [(r.method, r.path) for r in agent.requests] == [("PUT", PATH), ("PUT", PATH)]
    assert agent.bodies() == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 45},
        {"ProtectionEnabled": False},
    ]
    for r in agent.requests:
        assert r.headers["content-type"] == "application/json"


async def test_agent_uri_comes_from_the_environment(
    agent: FakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ECS_AGENT_URI", agent.uri + "/")  # a trailing slash is tolerated
    protection = EcsTaskProtection()
    await protection.on_busy()
    await protection.on_idle()
    assert [r.path for r in agent.requests] == [PATH, PATH]
    assert agent.bodies() == [
        {"ProtectionEnabled": True, "ExpiresInMinutes": 60},
        {"ProtectionEnabled": False},
    ]


async def test_outside_ecs_nothing_is_sent_and_nothing_is_left_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    protection = EcsTaskProtection()
    assert protection.url is None
    before = asyncio.all_tasks()
    await protection.on_busy()
    assert asyncio.all_tasks() == before  # no renewal loop without an agent
    await protection.on_idle()


@pytest.mark.parametrize("status", [400, 500, 503])
async def test_an_error_answer_is_logged_and_does_not_raise(
    agent: FakeAgent, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.ecs")
    agent.status = status
    protection = EcsTaskProtection(agent_uri=agent.uri)
    await protection.on_busy()
    await protection.on_idle()
    assert len(agent.requests) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all(f"answered {status}" in m for m in warnings), warnings


async def test_a_refused_connection_is_logged_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.ecs")
    protection = EcsTaskProtection(agent_uri=f"http://127.0.0.1:{closed_port()}")
    await protection.on_busy()
    await protection.on_idle()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "could not set ECS task protection to True" in warnings[0]
    assert "could not set ECS task protection to False" in warnings[1]


async def test_a_garbled_answer_is_logged_and_does_not_raise(
    agent: FakeAgent, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.ecs")
    agent.garbage = True
    protection = EcsTaskProtection(agent_uri=agent.uri)
    await protection.on_busy()
    await protection.on_idle()
    assert len(agent.requests) == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all("bad HTTP response" in m for m in warnings), warnings


async def test_a_non_http_agent_uri_is_logged_and_does_not_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aioworker.ecs")
    protection = EcsTaskProtection(agent_uri="https://169.254.170.2/v3")
    await protection.on_busy()
    await protection.on_idle()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert all("only http://" in m for m in warnings), warnings


@pytest.mark.parametrize("minutes", [0, -1, 2881])
def test_expiry_must_be_between_one_minute_and_two_days(minutes: int) -> None:
    with pytest.raises(ValueError, match="expires_in_minutes"):
        EcsTaskProtection(expires_in_minutes=minutes, agent_uri="http://127.0.0.1:1")


@pytest.mark.parametrize("minutes", [1, 2880])
def test_expiry_bounds_are_accepted(minutes: int) -> None:
    assert EcsTaskProtection(expires_in_minutes=minutes).expires_in_minutes == minutes


async def test_worker_with_protection_hooks_sets_and_releases_protection(
    agent: FakeAgent, redis_url: str, prefix: str
) -> None:
    protection = EcsTaskProtection(expires_in_minutes=30, agent_uri=agent.uri)
    w = Worker(
        redis_url,
        prefix=prefix,
        lease_timeout=2,
        backoff=Backoff(base_s=0.05, jitter=False),
        on_busy=[protection.on_busy],
        on_idle=[protection.on_idle],
    )
    protected_at_end: list[bool] = []

    @w.task(name="work")
    async def work(ctx: JobContext, n: int) -> int:
        await asyncio.sleep(0.2)
        protected_at_end.append(agent.bodies() == [ENABLE_30])
        return n * 2

    try:
        jobs = await w.enqueue_many([work.call(n) for n in range(4)])
        stats = await asyncio.wait_for(w.run(burst=True, handle_signals=False), 20)
        assert [await j.result(timeout=5) for j in jobs] == [0, 2, 4, 6]
    finally:
        await w.close()

    assert stats["complete"] == 4
    assert [(r.method, r.path) for r in agent.requests] == [("PUT", PATH)] * 2
    assert agent.bodies() == [ENABLE_30, {"ProtectionEnabled": False}]
    assert protected_at_end == [True] * 4  # the task was protected while each job ran
