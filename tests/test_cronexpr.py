"""The cron expression parser: grammar, errors, next fire times, and time zones with DST."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest

from aioworker import ConfigError, CronExpressionError
from aioworker.cronexpr import CronExpr

NY = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")  # DST shift of 30 minutes


def fires(expr: str, start: datetime, n: int, tz: tzinfo = UTC) -> list[str]:
    """The next ``n`` fire times after ``start``, as ISO strings in ``tz``."""
    c = CronExpr.parse(expr)
    t = int(start.timestamp())
    out: list[str] = []
    for _ in range(n):
        nxt = c.next_after(t, tz)
        assert nxt is not None, f"{expr} stopped firing after {out}"
        assert nxt > t
        out.append(datetime.fromtimestamp(nxt, tz).isoformat())
        t = nxt
    return out


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# -- grammar ---------------------------------------------------------------------------


def test_five_fields_fire_on_second_zero_and_six_fields_read_seconds_first() -> None:
    assert fires("*/20 * * * *", utc(2024, 1, 1, 0, 0, 5), 3) == [
        "2024-01-01T00:20:00+00:00",
        "2024-01-01T00:40:00+00:00",
        "2024-01-01T01:00:00+00:00",
    ]
    assert fires("*/15 * * * * *", utc(2024, 1, 1), 4) == [
        "2024-01-01T00:00:15+00:00",
        "2024-01-01T00:00:30+00:00",
        "2024-01-01T00:00:45+00:00",
        "2024-01-01T00:01:00+00:00",
    ]


def test_ranges_steps_lists_and_names() -> None:
    c = CronExpr.parse("0 5-10/2,23 * jan-MAR,Dec MON-FRI")
    assert c.hours == (5, 7, 9, 23)
    assert c.months == frozenset({1, 2, 3, 12})
    assert c.weekdays == frozenset({1, 2, 3, 4, 5})
    assert CronExpr.parse("0 0 * * FRI-SUN").weekdays == frozenset({5, 6, 0})
    assert CronExpr.parse("0 0 * * 7").weekdays == frozenset({0})  # 7 is Sunday too
    assert CronExpr.parse("0 10/20 * * *").minutes == (0,)  # minute 0 only
    assert CronExpr.parse("10/20 * * * *").minutes == (10, 30, 50)
    assert CronExpr.parse("  0   0  1 *   * ").text == "0 0 1 * *"


def test_macros() -> None:
    assert fires("@daily", utc(2024, 1, 1, 12), 1) == ["2024-01-02T00:00:00+00:00"]
    assert fires("@hourly", utc(2024, 1, 1, 12, 1), 1) == ["2024-01-01T13:00:00+00:00"]
    assert fires("@weekly", utc(2024, 1, 1), 1) == ["2024-01-07T00:00:00+00:00"]  # a Sunday
    assert fires("@monthly", utc(2024, 1, 1), 1) == ["2024-02-01T00:00:00+00:00"]
    assert fires("@YEARLY", utc(2024, 1, 1), 1) == ["2025-01-01T00:00:00+00:00"]


def test_restricted_day_fields_match_either_day_like_vixie_cron() -> None:
    # the 13th OR any Friday
    got = fires("0 0 13 * FRI", utc(2024, 9, 1), 4)
    assert got == [
        "2024-09-06T00:00:00+00:00",
        "2024-09-13T00:00:00+00:00",  # a Friday the 13th fires once
        "2024-09-20T00:00:00+00:00",
        "2024-09-27T00:00:00+00:00",
    ]
    # a day field starting with * makes both required: Fridays that are odd days
    assert fires("0 0 */2 * FRI", utc(2024, 9, 1), 2) == [
        "2024-09-13T00:00:00+00:00",
        "2024-09-27T00:00:00+00:00",
    ]


def test_last_day_weekday_nearest_and_nth() -> None:
    assert fires("0 0 L * *", utc(2024, 1, 15), 3) == [
        "2024-01-31T00:00:00+00:00",
        "2024-02-29T00:00:00+00:00",
        "2024-03-31T00:00:00+00:00",
    ]
    # last weekday of the month: 2024-03-31 and 2024-06-30 are Sundays
    assert fires("0 0 LW 3,6 *", utc(2024, 1, 1), 2) == [
        "2024-03-29T00:00:00+00:00",
        "2024-06-28T00:00:00+00:00",
    ]
    # weekday nearest the 15th (a Saturday in June 2024, a Sunday in September)
    assert fires("0 0 15W 6,7,9 *", utc(2024, 1, 1), 3) == [
        "2024-06-14T00:00:00+00:00",
        "2024-07-15T00:00:00+00:00",
        "2024-09-16T00:00:00+00:00",
    ]
    # 1W on a Saturday moves forward to Monday the 3rd, never into the previous month
    assert fires("0 0 1W 6 *", utc(2024, 1, 1), 1) == ["2024-06-03T00:00:00+00:00"]
    assert fires("0 0 * * 5L", utc(2024, 1, 1), 2) == [
        "2024-01-26T00:00:00+00:00",
        "2024-02-23T00:00:00+00:00",
    ]
    assert fires("0 0 * * MON#1,fri#3", utc(2024, 1, 1, 1), 3) == [
        "2024-01-19T00:00:00+00:00",
        "2024-02-05T00:00:00+00:00",
        "2024-02-16T00:00:00+00:00",
    ]


def test_rare_dates_and_expressions_that_never_fire() -> None:
    assert fires("0 0 29 2 *", utc(2024, 3, 1), 2) == [
        "2028-02-29T00:00:00+00:00",
        "2032-02-29T00:00:00+00:00",
    ]
    # a fifth Monday in February happens once in 28 years
    assert fires("0 0 * 2 MON#5", utc(2024, 3, 1), 1) == ["2044-02-29T00:00:00+00:00"]
    assert CronExpr.parse("0 0 30 2 *").next_after(0) is None
    assert CronExpr.parse("0 0 31 4,6,9,11 *").next_after(0) is None


BAD = [
    ("", "expected 5 fields"),
    ("* * * *", "expected 5 fields"),
    ("* * * * * * *", "got 7"),
    ("60 * * * *", "minute field '60': 60 is outside 0-59"),
    ("* 24 * * *", "hour field '24': 24 is outside 0-23"),
    ("* * 0 * *", "day-of-month field '0': 0 is outside 1-31"),
    ("* * * 13 *", "month field '13': 13 is outside 1-12"),
    ("* * * * 8", "day-of-week field '8': 8 is outside 0-7"),
    ("61 * * * * *", "second field '61'"),
    ("* * * FOO *", "'FOO' is not a number or a name"),
    ("*/0 * * * *", "step '0' must be a positive number"),
    ("*/x * * * *", "step 'x'"),
    ("5-1 * * * *", "range '5-1' runs backwards"),
    ("1,,2 * * * *", "'' is not a number"),
    ("* * * * MON#6", "the week after # must be 1-5"),
    ("* * 32W * *", "32 is outside 1-31"),
    ("* * * * 9L", "9 is outside 0-7"),
    ("@reboot", "expected 5 fields"),
]


@pytest.mark.parametrize(("expr", "message"), BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_expressions_raise_a_clear_error(expr: str, message: str) -> None:
    with pytest.raises(CronExpressionError) as info:
        CronExpr.parse(expr)
    assert message in str(info.value)
    assert f"bad cron expression {expr!r}" in str(info.value)
    assert isinstance(info.value, ConfigError)


def _brute(c: CronExpr, start: int, end: int) -> list[int]:
    """Every whole second in (start, end] whose UTC wall clock matches, by checking each."""
    out = []
    for t in range(start + 1, end + 1):
        d = datetime.fromtimestamp(t, UTC)
        if (
            d.second in c.seconds
            and d.minute in c.minutes
            and d.hour in c.hours
            and c.day_matches(d.date())
        ):
            out.append(t)
    return out


def test_next_after_agrees_with_checking_every_second() -> None:
    rng = random.Random(7)
    start = int(utc(2024, 2, 27, 22).timestamp())
    end = start + 4 * 86400
    for _ in range(12):
        expr = " ".join(
            [
                rng.choice(["0", "*/20", "15,45"]),
                rng.choice(["*", "*/7", "0", "5-9,30"]),
                rng.choice(["*", "*/5", "0,12", "22-23"]),
                rng.choice(["*", "28-31", "1", "L", "29W"]),
                rng.choice(["*", "2,3", "3"]),
                rng.choice(["*", "MON-WED", "4", "5L", "THU#5"]),
            ]
        )
        c = CronExpr.parse(expr)
        expected = _brute(c, start, end)
        got: list[int] = []
        t = start
        while (nxt := c.next_after(t)) is not None and nxt <= end:
            got.append(nxt)
            t = nxt
        assert got == expected, expr


# -- time zones and daylight saving time -------------------------------------------------


def test_time_zone_wall_clock() -> None:
    assert fires("0 3 1 * *", utc(2024, 1, 15), 2, TOKYO) == [
        "2024-02-01T03:00:00+09:00",
        "2024-03-01T03:00:00+09:00",
    ]
    assert CronExpr.parse("0 3 1 * *").next_after(int(utc(2024, 1, 15).timestamp()), TOKYO) == int(
        utc(2024, 1, 31, 18).timestamp()
    )


def test_a_daily_time_skipped_by_spring_forward_fires_once_at_the_jump() -> None:
    # 2024-03-10 in New York: 02:00 EST jumps to 03:00 EDT
    assert fires("30 2 * * *", datetime(2024, 3, 9, 12, tzinfo=NY), 3, NY) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]


def test_skipped_times_collapse_into_one_run_at_the_jump() -> None:
    assert fires("*/20 * * * *", datetime(2024, 3, 10, 1, 30, tzinfo=NY), 4, NY) == [
        "2024-03-10T01:40:00-05:00",
        "2024-03-10T03:00:00-04:00",  # 02:00, 02:20, 02:40 and 03:00 run once
        "2024-03-10T03:20:00-04:00",
        "2024-03-10T03:40:00-04:00",
    ]
    # every second through the jump: no second is skipped in real time
    got = fires("* * * * * *", datetime(2024, 3, 10, 1, 59, 58, tzinfo=NY), 3, NY)
    assert got == [
        "2024-03-10T01:59:59-05:00",
        "2024-03-10T03:00:00-04:00",
        "2024-03-10T03:00:01-04:00",
    ]


def test_a_fixed_time_repeated_by_fall_back_fires_at_its_first_occurrence_only() -> None:
    # 2024-11-03 in New York: 02:00 EDT goes back to 01:00 EST
    assert fires("30 1 * * *", datetime(2024, 11, 2, 12, tzinfo=NY), 3, NY) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
        "2024-11-05T01:30:00-05:00",
    ]
    # a fixed hour with a wildcard minute: the repeated hour runs once too
    got = fires("0,30 1 * * *", datetime(2024, 11, 3, 0, 59, tzinfo=NY), 3, NY)
    assert got == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:00:00-05:00",
    ]


def test_wildcard_hours_keep_their_real_time_spacing_through_fall_back() -> None:
    assert fires("*/30 * * * *", datetime(2024, 11, 3, 0, 45, tzinfo=NY), 5, NY) == [
        "2024-11-03T01:00:00-04:00",
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:00:00-05:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-03T02:00:00-05:00",
    ]
    got = fires("0 * * * *", datetime(2024, 11, 3, 0, 30, tzinfo=NY), 3, NY)
    assert [datetime.fromisoformat(g) - datetime.fromisoformat(got[0]) for g in got] == [
        timedelta(0),
        timedelta(hours=1),
        timedelta(hours=2),
    ]


def test_half_hour_dst_shift() -> None:
    # Lord Howe Island, 2019-10-06: 02:00 +10:30 jumps to 02:30 +11:00, so 02:00 does not
    # exist and fires at the jump; the hourly spacing goes on from 03:00
    assert fires("0 * * * *", datetime(2019, 10, 6, 1, 43, tzinfo=LORD_HOWE), 3, LORD_HOWE) == [
        "2019-10-06T02:30:00+11:00",
        "2019-10-06T03:00:00+11:00",
        "2019-10-06T04:00:00+11:00",
    ]
    assert fires("15 2 * * *", datetime(2019, 10, 5, 12, tzinfo=LORD_HOWE), 2, LORD_HOWE) == [
        "2019-10-06T02:30:00+11:00",  # 02:15 did not exist: fired at the jump
        "2019-10-07T02:15:00+11:00",
    ]


def test_daily_schedule_keeps_its_wall_time_across_a_year_of_dst_changes() -> None:
    got = fires("0 9 * * *", datetime(2024, 1, 1, tzinfo=NY), 366, NY)
    assert all(g[11:19] == "09:00:00" for g in got)
    assert got[-1].startswith("2024-12-31")
