"""Sorting Redis errors: retry later, refused for good, or neither.

Replies are parsed by redis-py's own parser (as they arrive from the server), and the
errors a real server gives are provoked on a throwaway ``redis-server``.
"""

from __future__ import annotations

import hashlib
import logging

import pytest
import redis
import redis.asyncio as aioredis
from redis._parsers.base import BaseParser
from redis.exceptions import ClusterError, ResponseError

from aioworker import BrokerBusy, BrokerUnavailable, ConfigError, RedisRefused
from aioworker.broker import TRANSIENT_ERRORS, Broker
from aioworker.redis_errors import error_code, is_retry_later, refusal, translate
from aioworker.scripts import LuaScript
from tests.redis_procs import RedisFactory

RETRY_LATER_REPLIES = [
    "READONLY You can't write against a read only replica.",
    "OOM command not allowed when used memory > 'maxmemory'.",
    "LOADING Redis is loading the dataset in memory",
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    "CLUSTERDOWN The cluster is down",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "ASK 3999 127.0.0.1:6381",
    "MOVED 3999 127.0.0.1:6381",
    "NOSCRIPT No matching script. Please use EVAL.",
    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
    "NOREPLICAS Not enough good replicas to write.",
    "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)",
]

# Redis 6.2 wraps an error raised by redis.call inside a script
WRAPPED_62 = "ERR Error running script (call to f_2f5a4c0d1e3b): @user_script:12: -{code} {text}"


def parsed(reply: str) -> BaseException:
    """The exception redis-py builds for an error reply."""
    return BaseParser.parse_error(reply)  # type: ignore[no-any-return,no-untyped-call]


def test_every_retry_later_reply_is_sorted_as_retry_later() -> None:
    for reply in RETRY_LATER_REPLIES:
        exc = parsed(reply)
        code = reply.split(" ")[0]
        assert error_code(exc) == code, reply
        assert is_retry_later(exc), reply
        assert refusal(exc) is None
        assert isinstance(exc, TRANSIENT_ERRORS) or type(exc) is ResponseError
        busy = translate(exc)
        # TRANSIENT_ERRORS catches it once translated (and by class where redis-py has one)
        assert isinstance(busy, TRANSIENT_ERRORS)
        if isinstance(exc, ResponseError):
            assert isinstance(busy, BrokerBusy) and busy.code == code
        else:  # LOADING: redis-py raises a ConnectionError of its own
            assert busy is exc


def test_redis_62_wrapped_script_errors_are_sorted_by_their_inner_code() -> None:
    for reply in RETRY_LATER_REPLIES:
        code, _, text = reply.partition(" ")
        exc = parsed(WRAPPED_62.format(code=code, text=text))
        assert type(exc) is ResponseError  # redis-py sees only ERR
        assert error_code(exc) == code
        assert is_retry_later(exc)
        assert isinstance(translate(exc), BrokerBusy)
    noperm = parsed(WRAPPED_62.format(code="NOPERM", text="this user has no permissions"))
    assert not is_retry_later(noperm)
    assert isinstance(translate(noperm), RedisRefused)


def test_a_redis_62_wrapped_data_error_reads_as_on_7() -> None:
    guard = "WRONGTYPE aioworker: key app:{q}:ready is a string, expected list"
    code, _, text = guard.partition(" ")
    exc = parsed(WRAPPED_62.format(code=code, text=text))
    seen = translate(exc)
    assert type(seen) is ResponseError
    assert str(seen) == guard  # what Redis 7.0+ answers for the same script
    assert not is_retry_later(seen)


def test_the_cluster_client_giving_up_mid_migration_is_retry_later() -> None:
    # redis-py raises this after its redirections and TRYAGAIN retries run out, e.g. while
    # a slot migration splits a script's keys between two masters
    exc = ClusterError("TTL exhausted.")
    assert is_retry_later(exc)
    assert isinstance(exc, TRANSIENT_ERRORS)
    busy = translate(exc)
    assert isinstance(busy, BrokerBusy) and busy.code == "TRYAGAIN"


def test_connection_errors_are_retry_later_and_data_errors_are_not() -> None:
    assert is_retry_later(redis.ConnectionError("Connection refused"))
    assert is_retry_later(redis.TimeoutError("Timeout reading from socket"))
    assert is_retry_later(OSError("network unreachable"))
    wrongtype = parsed("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert not is_retry_later(wrongtype)
    assert translate(wrongtype) is wrongtype
    script_bug = parsed(
        "ERR user_script:3: Script attempted to access nonexistent global variable 'x' script: "
        "f_1, on @user_script:3."
    )
    assert not is_retry_later(script_bug)
    assert translate(script_bug) is script_bug


def test_refusals_name_the_command_or_permission() -> None:
    unknown = parsed("ERR unknown command 'HRANDFIELD', with args beginning with: 'k' ")
    assert not is_retry_later(unknown)
    refused = translate(unknown)
    assert isinstance(refused, RedisRefused) and isinstance(refused, ConfigError)
    assert "'HRANDFIELD'" in str(refused)
    noperm = parsed("NOPERM User worker has no permissions to run the 'flushall' command")
    refused = translate(noperm)
    assert isinstance(refused, RedisRefused)
    assert "'flushall'" in str(refused) and "ACL" in str(refused)
    in_script = parsed(
        "ERR Error running script (call to f_1): @user_script:1: @user_script: 1: "
        "Unknown Redis command called from Lua script"
    )
    assert isinstance(translate(in_script), RedisRefused)


async def test_a_real_server_s_oom_busy_and_acl_errors(redis_factory: RedisFactory) -> None:
    server = redis_factory()
    admin = redis.Redis(host="127.0.0.1", port=server.port)
    admin.execute_command(  # type: ignore[no-untyped-call]
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "+@read", "+@scripting", "+ping"
    )
    broker = Broker(server.url)
    limited = Broker(f"redis://reader:pw@127.0.0.1:{server.port}/0", cluster=False)
    source = "return redis.call('SET', KEYS[1], ARGV[1])"
    write = LuaScript("w", source, hashlib.sha1(source.encode()).hexdigest())
    try:
        assert await broker._run_script(write, ["k"], ["v"]) == b"OK"
        admin.config_set("maxmemory", 1)
        try:
            try:
                await broker._run_script(write, ["k"], ["v"])
            except BrokerBusy as exc:
                assert exc.code == "OOM" and isinstance(exc, BrokerUnavailable)
            else:
                raise AssertionError("a write past maxmemory succeeded")
        finally:
            admin.config_set("maxmemory", 0)
        try:
            await limited._run_script(write, ["k"], ["v"])
        except RedisRefused as exc:
            assert "permission" in str(exc)
        else:
            raise AssertionError("a user without write permission could write")
        raw = aioredis.Redis(host="127.0.0.1", port=server.port)
        try:
            await raw.execute_command("NOSUCHCOMMAND")  # type: ignore[no-untyped-call]
        except ResponseError as exc:
            assert isinstance(translate(exc), RedisRefused)
            assert "NOSUCHCOMMAND" in str(translate(exc)).upper()
        finally:
            await raw.aclose()
    finally:
        await broker.close()
        await limited.close()
        admin.close()


def test_a_refusal_at_start_up_exits_3_with_one_line(caplog: pytest.LogCaptureFixture) -> None:
    from aioworker.cli.common import EXIT_REDIS, guarded

    def start() -> int:
        raise translate(parsed("NOPERM User w has no permissions to run the 'evalsha' command"))

    with caplog.at_level(logging.ERROR):
        assert guarded(start) == EXIT_REDIS == 3
    assert "'evalsha'" in caplog.text and "Traceback" not in caplog.text
