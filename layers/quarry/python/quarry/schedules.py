"""Schedules of summary jobs: EventBridge Scheduler expressions, checked once and evaluated the same everywhere.

Two forms, as EventBridge Scheduler takes them (times in UTC)::

    cron(minutes hours day-of-month month day-of-week year)   e.g. cron(0 6 * * ? *), cron(30 7 ? * MON-FRI *)
    rate(value unit)                                           e.g. rate(1 day), rate(12 hours), rate(90 minutes)

Cron fields follow EventBridge, not Unix: six fields with a year; exactly one of day-of-month and
day-of-week is ``?``; days of the week are ``1``-``7`` with ``1`` = Sunday (or ``SUN``-``SAT``); ``L``, ``W``
and ``#`` as EventBridge documents them (``6L`` = the last Friday, ``2#1`` = the first Monday, ``15W``, ``L``).
A rate's unit is singular for 1 (``rate(1 hour)``) and plural otherwise, as EventBridge requires.

A job runs at most once an hour (``MIN_INTERVAL``): a summary over thousands of documents is a batch job,
not a feed. Anything else is a 422 naming ``schedule``. AWS evaluates the expression itself (EventBridge
Scheduler); ``quarry serve`` evaluates it with :meth:`Schedule.next_after` (croniter, a pure-Python
package, so the REST Lambda that checks the expression carries it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from quarry.errors import InvalidInput

__all__ = ["MIN_INTERVAL", "Schedule", "parse_schedule"]

MIN_INTERVAL = timedelta(hours=1)
MAX_EXPRESSION_CHARS = 256
MIN_YEAR, MAX_YEAR = 1970, 2199

_CRON = re.compile(r"cron\((?P<body>[^()]*)\)", re.IGNORECASE)
_RATE = re.compile(r"rate\(\s*(?P<value>\d+)\s+(?P<unit>[A-Za-z]+)\s*\)", re.IGNORECASE)
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_FIELD_NAMES = ("minutes", "hours", "day-of-month", "month", "day-of-week", "year")
_FIELD_CHARS = (
    re.compile(r"[0-9,\-*/]+"),
    re.compile(r"[0-9,\-*/]+"),
    re.compile(r"[0-9,\-*/?LW]+"),
    re.compile(r"[0-9A-Z,\-*/]+"),
    re.compile(r"[0-9A-Z,\-*/?L#]+"),
    re.compile(r"[0-9,\-*/]+"),
)
#: How far ahead the minimum-interval check looks, and how many firings it compares at most.
_CHECK_FIRINGS = 400
_CHECK_SPAN = timedelta(days=800)


def _invalid(where: str, message: str) -> InvalidInput:
    return InvalidInput(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A checked expression. ``expression`` is its canonical text (what is stored and sent to AWS)."""

    expression: str
    #: cron: the five Unix fields croniter reads (day-of-week 0-6 from Sunday); None for a rate.
    unix_cron: str | None = None
    #: cron: the years it may fire in (None: any year).
    years: frozenset[int] | None = None
    #: rate: the interval; None for a cron expression.
    every: timedelta | None = None

    def next_after(self, moment: datetime, *, anchor: datetime | None = None) -> datetime | None:
        """The first firing strictly after ``moment`` (UTC), or None when it never fires again.

        A rate counts from ``anchor`` (when the schedule was created; default: ``moment``), as EventBridge
        Scheduler counts from the schedule's start.
        """
        moment = _utc(moment)
        if self.every is not None:
            start = _utc(anchor) if anchor is not None else moment
            if start > moment:
                return start
            steps = (moment - start) // self.every + 1
            return start + steps * self.every
        return self._next_cron(moment)

    def firings(self, after: datetime, *, limit: int) -> list[datetime]:
        """Up to ``limit`` firings after ``after``, in order."""
        out: list[datetime] = []
        moment = _utc(after)
        anchor = moment
        while len(out) < limit:
            found = self.next_after(moment, anchor=anchor)
            if found is None:
                break
            out.append(found)
            moment = found
        return out

    def _next_cron(self, moment: datetime) -> datetime | None:
        from croniter import croniter

        assert self.unix_cron is not None
        iterator = croniter(self.unix_cron, moment.replace(second=0, microsecond=0))
        last_year = max(self.years) if self.years else MAX_YEAR
        while True:
            candidate: datetime = iterator.get_next(datetime)
            candidate = _utc(candidate)
            if candidate.year > last_year:
                return None
            if candidate <= moment:
                continue
            if self.years is None or candidate.year in self.years:
                return candidate
            later = [y for y in self.years if y > candidate.year]
            if not later:
                return None
            # Jump to the first allowed year instead of stepping through the ones in between.
            jump = datetime(min(later), 1, 1, tzinfo=UTC) - timedelta(minutes=1)
            iterator = croniter(self.unix_cron, jump)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def parse_schedule(
    raw: object, *, where: str = "schedule", now: datetime | None = None, check_interval: bool = True
) -> Schedule:
    """The schedule in ``raw``, or a 422 naming ``where`` that says what is wrong with it.

    ``check_interval`` off: an expression checked before (a stored job's) is only read, not checked again
    for its firings (which costs a few hundred cron evaluations).
    """
    if not isinstance(raw, str) or not raw.strip():
        raise _invalid(where, "must be an expression such as cron(0 6 * * ? *) or rate(1 day)")
    text = raw.strip()
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _invalid(where, f"at most {MAX_EXPRESSION_CHARS} characters")
    rate = _RATE.fullmatch(text)
    if rate:
        return _rate(int(rate["value"]), rate["unit"].lower(), where)
    cron = _CRON.fullmatch(text)
    if cron:
        return _cron(cron["body"], where, now or datetime.now(UTC), check_interval=check_interval)
    raise _invalid(
        where,
        f"{text!r} is not an EventBridge Scheduler expression: use cron(minutes hours day-of-month month "
        "day-of-week year), e.g. cron(0 6 * * ? *), or rate(value unit), e.g. rate(1 day)",
    )


def _rate(value: int, unit: str, where: str) -> Schedule:
    base = unit[:-1] if unit.endswith("s") else unit
    if base not in _UNITS:
        raise _invalid(where, f"rate unit {unit!r}: use minute(s), hour(s) or day(s)")
    if value < 1 or value > 1_000_000:
        raise _invalid(where, "a rate's value is a whole number from 1")
    if (value == 1) != (unit == base):
        wanted = base if value == 1 else f"{base}s"
        raise _invalid(where, f"write rate({value} {wanted}) (singular for 1, plural otherwise)")
    every = value * _UNITS[base]
    if every < MIN_INTERVAL:
        raise _invalid(where, f"runs at most once an hour (rate({value} {unit}) is more often)")
    return Schedule(expression=f"rate({value} {unit})", every=every)


def _cron(body: str, where: str, now: datetime, *, check_interval: bool) -> Schedule:
    fields = body.upper().split()
    if len(fields) != len(_FIELD_NAMES):
        raise _invalid(
            where,
            f"cron takes 6 fields (minutes hours day-of-month month day-of-week year), got {len(fields)}: "
            "e.g. cron(0 6 * * ? *)",
        )
    for name, value, chars in zip(_FIELD_NAMES, fields, _FIELD_CHARS, strict=True):
        if not chars.fullmatch(value):
            raise _invalid(where, f"cron {name} field {value!r} holds characters it does not allow")
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise _invalid(where, "cron: exactly one of day-of-month and day-of-week must be '?' (e.g. cron(0 6 * * ? *))")
    if ("?" in dom and dom != "?") or ("?" in dow and dow != "?"):
        raise _invalid(where, "cron: '?' stands alone in its field")
    unix = " ".join([minutes, hours, "*" if dom == "?" else dom, month, "*" if dow == "?" else _unix_dow(dow, where)])
    schedule = Schedule(expression=f"cron({' '.join(fields)})", unix_cron=unix, years=_years(year, where))
    if check_interval:
        _check_cron(schedule, where, now)
    return schedule


def _unix_dow(field: str, where: str) -> str:
    """EventBridge day-of-week (1-7 from Sunday, ``nL``, ``n#k``) as croniter's (0-6 from Sunday, ``Ln``)."""

    def day(number: str) -> str:
        value = int(number)
        if not 1 <= value <= 7:
            raise _invalid(where, f"cron day-of-week {number} is out of range: 1-7 (1 = Sunday) or SUN-SAT")
        return str(value - 1)

    if field == "L":
        return "6"  # the last day of the week: Saturday
    last = re.fullmatch(r"(\d)L", field)
    if last:
        return f"L{day(last[1])}"
    nth = re.fullmatch(r"(\d)#([1-5])", field)
    if nth:
        return f"{day(nth[1])}#{nth[2]}"
    if "L" in field or "#" in field:
        raise _invalid(where, f"cron day-of-week {field!r}: 'L' and '#' take one day (6L, 2#1)")

    def convert(match: re.Match[str]) -> str:
        return day(match[0])

    # Numbers before a '/' are days; the step after it is not.
    parts = []
    for item in field.split(","):
        base, slash, step = item.partition("/")
        parts.append(re.sub(r"\d+", convert, base) + slash + step)
    return ",".join(parts)


def _years(field: str, where: str) -> frozenset[int] | None:
    if field == "*":
        return None
    years: set[int] = set()
    for item in field.split(","):
        match = re.fullmatch(r"(\*|\d{4})(?:-(\d{4}))?(?:/(\d+))?", item)
        if not match:
            raise _invalid(where, f"cron year {item!r}: use *, 2030, 2030-2035, 2030/2 or a list of them")
        first = MIN_YEAR if match[1] == "*" else int(match[1])
        last = int(match[2]) if match[2] else (MAX_YEAR if match[3] or match[1] == "*" else first)
        step = int(match[3]) if match[3] else 1
        if not (MIN_YEAR <= first <= last <= MAX_YEAR) or step < 1:
            raise _invalid(where, f"cron year {item!r} is out of range ({MIN_YEAR}-{MAX_YEAR})")
        years.update(range(first, last + 1, step))
    return frozenset(years)


def _check_cron(schedule: Schedule, where: str, now: datetime) -> None:
    from croniter import croniter

    assert schedule.unix_cron is not None
    if not croniter.is_valid(schedule.unix_cron):
        raise _invalid(where, f"{schedule.expression} does not parse (see the EventBridge Scheduler cron syntax)")
    try:
        firings = _firings_within(schedule, now)
    except (ValueError, KeyError) as exc:  # croniter: a day that never comes (31 in February only), bad ranges
        raise _invalid(where, f"{schedule.expression} does not parse: {exc}") from None
    if not firings:
        raise _invalid(where, f"{schedule.expression} never fires after {now:%Y-%m-%d %H:%M} UTC")
    for earlier, later in pairwise(firings):
        if later - earlier < MIN_INTERVAL:
            raise _invalid(
                where,
                f"{schedule.expression} runs more often than once an hour "
                f"({earlier:%H:%M} then {later:%H:%M} UTC); a summary job runs at most hourly",
            )


def _firings_within(schedule: Schedule, now: datetime) -> list[datetime]:
    """The firings from the first one after ``now`` on, within ``_CHECK_SPAN`` of it (at most ``_CHECK_FIRINGS``)."""
    first = schedule.next_after(_utc(now))
    if first is None:
        return []
    out = [first]
    horizon = first + _CHECK_SPAN
    while len(out) < _CHECK_FIRINGS:
        found = schedule.next_after(out[-1])
        if found is None or found > horizon:
            break
        out.append(found)
    return out
