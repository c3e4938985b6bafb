"""The leader_acquire, leader_renew and leader_release scripts: a lease fenced by its token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aioworker.cron_scripts import leader_acquire, leader_release, leader_renew
from aioworker.keys import LeaderKeys
from tests.scriptkit import Kit, open_kit


@pytest.fixture
async def kit(redis_url: str, prefix: str) -> AsyncIterator[Kit]:
    async with open_kit(redis_url, prefix) as k:
        yield k


@pytest.fixture
def lk(prefix: str) -> LeaderKeys:
    return LeaderKeys(prefix, "reports")


async def test_acquire_a_free_lease_counts_a_term_and_sets_the_ttl(
    kit: Kit, lk: LeaderKeys
) -> None:
    assert await leader_acquire(kit.scripts, lk, "a", 5000) == (True, 1, 5000)
    assert await kit.get(lk.lease) == b"a"
    assert 4000 < await kit.r.pttl(lk.lease) <= 5000
    assert await kit.get(lk.term) == b"1"


async def test_a_held_lease_refuses_others_and_changes_nothing(kit: Kit, lk: LeaderKeys) -> None:
    await leader_acquire(kit.scripts, lk, "a", 5000)
    before = await kit.snapshot()
    held, term, left = await leader_acquire(kit.scripts, lk, "b", 5000)
    assert (held, term) == (False, 1) and 0 < left <= 5000
    assert await kit.snapshot() == before


async def test_the_holder_acquiring_again_renews_and_keeps_its_term(
    kit: Kit, lk: LeaderKeys
) -> None:
    await leader_acquire(kit.scripts, lk, "a", 1000)
    assert await leader_acquire(kit.scripts, lk, "a", 9000) == (True, 1, 9000)
    assert await kit.r.pttl(lk.lease) > 8000


async def test_each_election_gets_the_next_term(kit: Kit, lk: LeaderKeys) -> None:
    assert (await leader_acquire(kit.scripts, lk, "a", 5000))[:2] == (True, 1)
    assert await leader_release(kit.scripts, lk, "a")
    assert (await leader_acquire(kit.scripts, lk, "b", 5000))[:2] == (True, 2)
    await kit.r.delete(lk.lease)  # expired
    assert (await leader_acquire(kit.scripts, lk, "a", 5000))[:2] == (True, 3)


async def test_renew_extends_only_the_holders_lease(kit: Kit, lk: LeaderKeys) -> None:
    await leader_acquire(kit.scripts, lk, "a", 1000)
    assert await leader_renew(kit.scripts, lk, "a", 9000)
    assert await kit.r.pttl(lk.lease) > 8000
    before = await kit.snapshot()
    assert not await leader_renew(kit.scripts, lk, "b", 9000)
    assert await kit.snapshot() == before


async def test_an_expired_lease_is_not_taken_back_by_renew(kit: Kit, lk: LeaderKeys) -> None:
    await leader_acquire(kit.scripts, lk, "a", 5000)
    await kit.r.delete(lk.lease)
    assert not await leader_renew(kit.scripts, lk, "a", 5000)
    assert await kit.r.exists(lk.lease) == 0


async def test_release_deletes_only_the_holders_lease(kit: Kit, lk: LeaderKeys) -> None:
    await leader_acquire(kit.scripts, lk, "a", 5000)
    before = await kit.snapshot()
    assert not await leader_release(kit.scripts, lk, "b")
    assert await kit.snapshot() == before
    assert await leader_release(kit.scripts, lk, "a")
    assert await kit.r.exists(lk.lease) == 0
    assert await kit.get(lk.term) == b"1"  # the term counter is kept for the next election
