"""Cron expressions: parsing, and the next fire time in a time zone.

Grammar (5 fields, or 6 with seconds first; names and ``L``/``W``/``#`` are case-insensitive)::

    [second] minute hour day-of-month month day-of-week
    second, minute 0-59 | hour 0-23 | day-of-month 1-31 | month 1-12 or JAN-DEC
    day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday)

Each field is a comma-separated list of ``*``, ``N``, ``A-B``, ``*/S``, ``A-B/S`` or ``A/S``
(from A to the end of the range, every S).  ``?`` means ``*`` in the two day fields.
Day-of-month also takes ``L`` (last day), ``LW`` (last weekday) and ``NW`` (the weekday
nearest to day N, never leaving the month); day-of-week takes ``DL`` (last D of the month,
e.g. ``5L`` last Friday) and ``D#K`` (K-th D of the month, e.g. ``MON#1``).  The macros
``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``) and
``@hourly`` stand for their usual expressions.

When both day fields are restricted (neither starts with ``*`` or ``?``) a day matches if
either matches, as in Vixie cron; otherwise both must match.

Time zones and daylight saving time, for :meth:`CronExpr.next_after`:

- times are matched against the wall clock of the zone;
- a wall time that does not exist because the clocks jump forward fires once, at the
  instant of the jump (``30 2 * * *`` in New York on the spring-forward day fires at
  03:00 EDT); several skipped times collapse into that one run;
- a wall time that occurs twice because the clocks go back fires at its first occurrence
  only, unless the hour field starts with ``*`` (``*/15 * * * *``, ``0 * * * *``): such
  schedules keep their spacing in real time and fire in both passes.
"""

from __future__ import annotations

import bisect
import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

from .errors import CronExpressionError

__all__ = ("CronExpr",)

_MONTHS = {
    name: n
    for n, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS = {name: n for n, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Longest search for the next matching day (``0 0 * 2 MON#5`` fires once in 28 years).
_SEARCH_YEARS = 32
#: Offsets are probed this often when looking for a DST change between two instants.
_PROBE_S = 3 * 3600
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_SECOND = _Field("second", 0, 59, {})
_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_DOM = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTHS)
_DOW = _Field("day-of-week", 0, 7, _DAYS)


def _number(field: _Field, token: str) -> int:
    value = field.names.get(token.upper())
    if value is None:
        if not token.isdigit():
            raise ValueError(f"{token!r} is not a number or a name")
        value = int(token)
    if not field.low <= value <= field.high:
        raise ValueError(f"{value} is outside {field.low}-{field.high}")
    return value


def _values(field: _Field, item: str) -> set[int]:
    """The values of one list item: ``*``, ``N``, ``A-B``, with an optional ``/S``."""
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) < 1:
            raise ValueError(f"step {step_text!r} must be a positive number")
        step = int(step_text)
    if base in ("*", "?"):
        low, high = field.low, field.high
    elif "-" in base:
        a, _, b = base.partition("-")
        low, high = _number(field, a), _number(field, b)
        if field is _DOW and high == 0 and low > 0:
            high = 7  # FRI-SUN
        if low > high:
            raise ValueError(f"range {base!r} runs backwards")
    else:
        low = _number(field, base)
        high = field.high if slash else low
    return set(range(low, high + 1, step))


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """The weekday (Mon-Fri) nearest to ``day`` within the month, or None past its end."""
    last = calendar.monthrange(year, month)[1]
    if day > last:
        return None
    wd = date(year, month, day).weekday()  # Monday 0
    if wd == 5:  # Saturday: Friday before, or Monday after on the 1st
        return day - 1 if day > 1 else day + 2
    if wd == 6:  # Sunday: Monday after, or Friday before at the month's end
        return day + 1 if day < last else day - 2
    return day


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A parsed cron expression (see the module docstring for the grammar).

    Build one with :meth:`parse`; :meth:`next_after` gives fire times.
    """

    text: str
    seconds: tuple[int, ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # Sunday 0
    dom_star: bool  # the field starts with * or ?: both day fields must then match
    dow_star: bool
    hour_wild: bool
    last_day: bool = False
    last_weekday: bool = False
    near_weekdays: tuple[int, ...] = ()
    last_dows: frozenset[int] = frozenset()
    nth_dows: frozenset[tuple[int, int]] = frozenset()

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        """Parse a 5- or 6-field expression or a macro.

        :param text: e.g. ``"0 3 1 * *"``, ``"*/10 * * * * *"``, ``"@daily"``.
        :returns: the parsed expression.
        :raises CronExpressionError: naming the field and what is wrong with it.
        """
        source = " ".join(text.split())
        expanded = _MACROS.get(source.lower(), source)
        parts = expanded.split(" ")
        if len(parts) == 5:
            parts.insert(0, "0")
        elif len(parts) != 6:
            raise CronExpressionError(
                f"bad cron expression {text!r}: expected 5 fields (minute hour day-of-month "
                f"month day-of-week) or 6 with seconds first, got {len(parts)}"
            )
        sec, minute, hour, dom, month, dow = parts
        fields = ((sec, _SECOND), (minute, _MINUTE), (hour, _HOUR), (month, _MONTH))
        try:
            sets = [cls._plain(value, field) for value, field in fields]
        except _FieldError as exc:
            raise CronExpressionError(f"bad cron expression {text!r}: {exc}") from None
        try:
            day_parts = cls._days(dom, dow)
        except _FieldError as exc:
            raise CronExpressionError(f"bad cron expression {text!r}: {exc}") from None
        days, last_day, last_weekday, near, weekdays, last_dows, nth = day_parts
        return cls(
            text=source,
            seconds=tuple(sorted(sets[0])),
            minutes=tuple(sorted(sets[1])),
            hours=tuple(sorted(sets[2])),
            days=frozenset(days),
            months=frozenset(sets[3]),
            weekdays=frozenset(weekdays),
            dom_star=dom[:1] in ("*", "?"),
            dow_star=dow[:1] in ("*", "?"),
            hour_wild=hour.startswith("*"),
            last_day=last_day,
            last_weekday=last_weekday,
            near_weekdays=tuple(sorted(near)),
            last_dows=frozenset(last_dows),
            nth_dows=frozenset(nth),
        )

    @staticmethod
    def _plain(value: str, field: _Field) -> set[int]:
        out: set[int] = set()
        for item in value.split(","):
            try:
                out |= _values(field, item)
            except ValueError as exc:
                raise _FieldError(f"{field.name} field {value!r}: {exc}") from None
        return out

    @staticmethod
    def _days(
        dom: str, dow: str
    ) -> tuple[set[int], bool, bool, set[int], set[int], set[int], set[tuple[int, int]]]:
        days: set[int] = set()
        near: set[int] = set()
        last_day = last_weekday = False
        for item in dom.split(","):
            up = item.upper()
            try:
                if up == "L":
                    last_day = True
                elif up == "LW":
                    last_weekday = True
                elif up.endswith("W"):
                    near.add(_number(_DOM, up[:-1]))
                else:
                    days |= _values(_DOM, item)
            except ValueError as exc:
                raise _FieldError(f"day-of-month field {dom!r}: {exc}") from None
        weekdays: set[int] = set()
        last_dows: set[int] = set()
        nth: set[tuple[int, int]] = set()
        for item in dow.split(","):
            up = item.upper()
            try:
                if "#" in up:
                    d, _, k = up.partition("#")
                    if not k.isdigit() or not 1 <= int(k) <= 5:
                        raise ValueError(f"{item!r}: the week after # must be 1-5")
                    nth.add((_number(_DOW, d) % 7, int(k)))
                elif up.endswith("L") and len(up) > 1:
                    last_dows.add(_number(_DOW, up[:-1]) % 7)
                else:
                    weekdays |= {d % 7 for d in _values(_DOW, item)}
            except ValueError as exc:
                raise _FieldError(f"day-of-week field {dow!r}: {exc}") from None
        return days, last_day, last_weekday, near, weekdays, last_dows, nth

    # -- matching --------------------------------------------------------------------

    def _dom_match(self, year: int, month: int, day: int, last: int) -> bool:
        if day in self.days or (self.last_day and day == last):
            return True
        if self.last_weekday and day == _nearest_weekday(year, month, last):
            return True
        return any(day == _nearest_weekday(year, month, n) for n in self.near_weekdays)

    def _dow_match(self, year: int, month: int, day: int, last: int) -> bool:
        wd = (date(year, month, day).weekday() + 1) % 7
        if wd in self.weekdays:
            return True
        if wd in self.last_dows and day + 7 > last:
            return True
        return (wd, (day - 1) // 7 + 1) in self.nth_dows

    def day_matches(self, day: date) -> bool:
        """Whether the expression fires on this calendar day (at some time of it)."""
        if day.month not in self.months:
            return False
        last = calendar.monthrange(day.year, day.month)[1]
        dom = self._dom_match(day.year, day.month, day.day, last)
        if self.dom_star or self.dow_star:
            return dom and self._dow_match(day.year, day.month, day.day, last)
        return dom or self._dow_match(day.year, day.month, day.day, last)

    def _time_at_or_after(self, h0: int, m0: int, s0: int) -> tuple[int, int, int] | None:
        for h in self.hours[bisect.bisect_left(self.hours, h0) :]:
            if h > h0:
                return h, self.minutes[0], self.seconds[0]
            for m in self.minutes[bisect.bisect_left(self.minutes, m0) :]:
                if m > m0:
                    return h, m, self.seconds[0]
                i = bisect.bisect_left(self.seconds, s0)
                if i < len(self.seconds):
                    return h, m, self.seconds[i]
        return None

    def next_wall(self, start: datetime) -> datetime | None:
        """The first matching wall-clock time at or after ``start`` (naive, no zone).

        :returns: None if nothing matches within 32 years.
        """
        day = start.date()
        tod: tuple[int, int, int] | None = (start.hour, start.minute, start.second)
        end_year = day.year + _SEARCH_YEARS
        while day.year <= end_year:
            if day.month not in self.months:
                # jump to the first day of the next month
                day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
                tod = None
                continue
            if self.day_matches(day):
                found = self._time_at_or_after(*(tod or (0, 0, 0)))
                if found is not None:
                    return datetime(day.year, day.month, day.day, *found)
            day += timedelta(days=1)
            tod = None
        return None

    # -- instants --------------------------------------------------------------------

    def next_after(self, after_s: int, tz: tzinfo = UTC) -> int | None:
        """The first fire instant strictly after ``after_s``, following the DST rules above.

        :param after_s: epoch seconds.
        :param tz: the zone whose wall clock the expression reads.
        :returns: epoch seconds, or None if the expression never fires again.
        """
        t = after_s + 1
        limit = after_s + (_SEARCH_YEARS + 1) * 366 * 86400
        fixed = isinstance(tz, timezone)
        while t < limit:
            off = _offset(tz, t)
            m = self.next_wall(_EPOCH + timedelta(seconds=t + off))
            if m is None:
                return None
            i = int((m - _EPOCH).total_seconds()) - off
            change = None if fixed else _first_change(tz, t, i, off)
            if change is None:
                if not self.hour_wild and datetime.fromtimestamp(i, tz).fold == 1:
                    t = i + 1  # the second pass of a repeated wall time: fired already
                    continue
                return i
            new_off = _offset(tz, change)
            if new_off > off:
                # clocks jump forward: wall times in the gap fire once, at the jump
                gap = self.next_wall(_EPOCH + timedelta(seconds=change + off))
                if gap is not None and gap < _EPOCH + timedelta(seconds=change + new_off):
                    return change
            t = change
        return None


class _FieldError(Exception):
    pass


def _offset(tz: tzinfo, t: int) -> int:
    delta = datetime.fromtimestamp(t, tz).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _first_change(tz: tzinfo, start: int, end: int, off: int) -> int | None:
    """The first instant in ``(start, end]`` whose UTC offset differs from ``off``."""
    lo = start
    while lo < end:
        hi = min(lo + _PROBE_S, end)
        if _offset(tz, hi) != off:
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset(tz, mid) != off:
                    hi = mid
                else:
                    lo = mid
            return hi
        lo = hi
    return None
