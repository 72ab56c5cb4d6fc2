"""AML SDK v1's ``ScheduleRecurrence`` as an Airflow timetable.

``ScheduleRecurrence`` takes AML's argument names (``frequency``, ``interval``, ``start_time``,
``time_zone``, ``hours``, ``minutes``, ``week_days``, ``time_of_day``) and refuses what AML refused,
naming the field and the fix. :func:`recurrence_timetable` turns it into one of Airflow's *built-in*
timetables, so a DAG using it needs no plugin::

    r = ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday"], hours=[9], minutes=[30],
                           time_zone="Pacific Standard Time", start_time="2025-01-01T00:00:00")
    with DAG("weekly", schedule=recurrence_timetable(r), start_date=r.start_date, catchup=False):
        ...

How each combination maps (``start`` is ``start_time`` read in ``time_zone``, to the minute):

* ``Minute`` / ``Hour``: every ``interval`` units of elapsed time counted from ``start``. When the
  period divides a day (every 5, 15, 90 minutes; every 1, 2, 3, 4, 6, 8, 12 hours) this is a cron in
  UTC (one ``CronTriggerTimetable``, or a ``MultipleCronTriggerTimetable`` when the fire times of a
  day need several minute values); otherwise a ``DeltaTriggerTimetable`` from ``start``.
* ``Day`` with ``interval=1``: every combination of ``hours`` x ``minutes`` (``time_of_day`` is one of
  each; a missing one is taken from ``start``) in ``time_zone``: a cron in that zone, so the wall-clock
  time holds across daylight-saving changes.
* ``Week`` with ``interval=1``: as ``Day``, on ``week_days`` (default: ``start``'s day of the week).
* ``Day`` / ``Week`` with ``interval > 1`` and one fire time per period: a ``DeltaTriggerTimetable`` of
  ``interval`` days / weeks from the first fire time at or after ``start``. It counts elapsed time, so
  in a zone with daylight saving the wall-clock time moves by the DST offset between the seasons
  (cron cannot count "every other day" across month ends). Several fire times per period with
  ``interval > 1`` (every 2 weeks on Monday and Thursday) have no built-in timetable and are refused.
* ``Month``: ``start``'s day of the month and time, every ``interval`` months: a cron in ``time_zone``
  when ``interval`` divides 12, otherwise a ``DeltaTriggerTimetable`` of ``relativedelta(months=...)``.
* No ``start_time``: AML ran the first workload at once and then every ``interval`` from the moment
  the schedule was created; a ``DeltaTriggerTimetable`` without ``start_date`` does exactly that for
  the frequencies anchored on the start (``Minute``, ``Hour``, ``Day`` without ``hours``/``minutes``,
  ``Month``); a cron (``Day``/``Week`` with the times given) gets ``run_immediately=True``.
* AML: "if ``start_time`` matches ``week_days`` and ``time_of_day`` (or ``hours`` and ``minutes``) the
  first workload does not run at ``start_time``". With any of those given, :attr:`ScheduleRecurrence.
  start_date` is therefore one minute after ``start``.

The computation here imports nothing from Airflow; only :func:`recurrence_timetable` does.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from airflow_provider_amlpipe.errors import ConfigurationError

if TYPE_CHECKING:
    from dateutil.relativedelta import relativedelta

FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_CRON_DOW = {"Sunday": 0, "Monday": 1, "Tuesday": 2, "Wednesday": 3, "Thursday": 4, "Friday": 5, "Saturday": 6}
_DAY_MINUTES = 24 * 60

# AML's ``azureml.pipeline.core.schedule.TimeZone`` values are Windows time zone names. Mapped to IANA
# with CLDR's windowsZones table (territory "001", the zone Windows itself treats as the main one).
WINDOWS_TIME_ZONES: dict[str, str] = {
    "Dateline Standard Time": "Etc/GMT+12",
    "UTC-11": "Etc/GMT+11",
    "Aleutian Standard Time": "America/Adak",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Marquesas Standard Time": "Pacific/Marquesas",
    "Alaskan Standard Time": "America/Anchorage",
    "UTC-09": "Etc/GMT+9",
    "Pacific Standard Time (Mexico)": "America/Tijuana",
    "UTC-08": "Etc/GMT+8",
    "Pacific Standard Time": "America/Los_Angeles",
    "US Mountain Standard Time": "America/Phoenix",
    "Mountain Standard Time (Mexico)": "America/Mazatlan",
    "Mountain Standard Time": "America/Denver",
    "Yukon Standard Time": "America/Whitehorse",
    "Central America Standard Time": "America/Guatemala",
    "Central Standard Time": "America/Chicago",
    "Easter Island Standard Time": "Pacific/Easter",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "Canada Central Standard Time": "America/Regina",
    "SA Pacific Standard Time": "America/Bogota",
    "Eastern Standard Time (Mexico)": "America/Cancun",
    "Eastern Standard Time": "America/New_York",
    "Haiti Standard Time": "America/Port-au-Prince",
    "Cuba Standard Time": "America/Havana",
    "US Eastern Standard Time": "America/Indianapolis",
    "Turks And Caicos Standard Time": "America/Grand_Turk",
    "Paraguay Standard Time": "America/Asuncion",
    "Atlantic Standard Time": "America/Halifax",
    "Venezuela Standard Time": "America/Caracas",
    "Central Brazilian Standard Time": "America/Cuiaba",
    "SA Western Standard Time": "America/La_Paz",
    "Pacific SA Standard Time": "America/Santiago",
    "Newfoundland Standard Time": "America/St_Johns",
    "Tocantins Standard Time": "America/Araguaina",
    "E. South America Standard Time": "America/Sao_Paulo",
    "SA Eastern Standard Time": "America/Cayenne",
    "Argentina Standard Time": "America/Buenos_Aires",
    "Greenland Standard Time": "America/Godthab",
    "Montevideo Standard Time": "America/Montevideo",
    "Magallanes Standard Time": "America/Punta_Arenas",
    "Saint Pierre Standard Time": "America/Miquelon",
    "Bahia Standard Time": "America/Bahia",
    "UTC-02": "Etc/GMT+2",
    "Mid-Atlantic Standard Time": "Etc/GMT+2",
    "Azores Standard Time": "Atlantic/Azores",
    "Cape Verde Standard Time": "Atlantic/Cape_Verde",
    "UTC": "Etc/UTC",
    "Coordinated Universal Time": "Etc/UTC",
    "GMT Standard Time": "Europe/London",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Sao Tome Standard Time": "Africa/Sao_Tome",
    "Morocco Standard Time": "Africa/Casablanca",
    "W. Europe Standard Time": "Europe/Berlin",
    "Central Europe Standard Time": "Europe/Budapest",
    "Romance Standard Time": "Europe/Paris",
    "Central European Standard Time": "Europe/Warsaw",
    "W. Central Africa Standard Time": "Africa/Lagos",
    "Jordan Standard Time": "Asia/Amman",
    "GTB Standard Time": "Europe/Bucharest",
    "Middle East Standard Time": "Asia/Beirut",
    "Egypt Standard Time": "Africa/Cairo",
    "E. Europe Standard Time": "Europe/Chisinau",
    "Syria Standard Time": "Asia/Damascus",
    "West Bank Standard Time": "Asia/Hebron",
    "South Africa Standard Time": "Africa/Johannesburg",
    "FLE Standard Time": "Europe/Kiev",
    "Israel Standard Time": "Asia/Jerusalem",
    "South Sudan Standard Time": "Africa/Juba",
    "Kaliningrad Standard Time": "Europe/Kaliningrad",
    "Sudan Standard Time": "Africa/Khartoum",
    "Libya Standard Time": "Africa/Tripoli",
    "Namibia Standard Time": "Africa/Windhoek",
    "Arabic Standard Time": "Asia/Baghdad",
    "Turkey Standard Time": "Europe/Istanbul",
    "Arab Standard Time": "Asia/Riyadh",
    "Belarus Standard Time": "Europe/Minsk",
    "Russian Standard Time": "Europe/Moscow",
    "E. Africa Standard Time": "Africa/Nairobi",
    "Volgograd Standard Time": "Europe/Volgograd",
    "Iran Standard Time": "Asia/Tehran",
    "Arabian Standard Time": "Asia/Dubai",
    "Astrakhan Standard Time": "Europe/Astrakhan",
    "Azerbaijan Standard Time": "Asia/Baku",
    "Russia Time Zone 3": "Europe/Samara",
    "Mauritius Standard Time": "Indian/Mauritius",
    "Saratov Standard Time": "Europe/Saratov",
    "Georgian Standard Time": "Asia/Tbilisi",
    "Caucasus Standard Time": "Asia/Yerevan",
    "Afghanistan Standard Time": "Asia/Kabul",
    "West Asia Standard Time": "Asia/Tashkent",
    "Ekaterinburg Standard Time": "Asia/Yekaterinburg",
    "Pakistan Standard Time": "Asia/Karachi",
    "Qyzylorda Standard Time": "Asia/Qyzylorda",
    "India Standard Time": "Asia/Calcutta",
    "Sri Lanka Standard Time": "Asia/Colombo",
    "Nepal Standard Time": "Asia/Katmandu",
    "Central Asia Standard Time": "Asia/Almaty",
    "Bangladesh Standard Time": "Asia/Dhaka",
    "Omsk Standard Time": "Asia/Omsk",
    "Myanmar Standard Time": "Asia/Rangoon",
    "SE Asia Standard Time": "Asia/Bangkok",
    "Altai Standard Time": "Asia/Barnaul",
    "W. Mongolia Standard Time": "Asia/Hovd",
    "North Asia Standard Time": "Asia/Krasnoyarsk",
    "N. Central Asia Standard Time": "Asia/Novosibirsk",
    "Tomsk Standard Time": "Asia/Tomsk",
    "China Standard Time": "Asia/Shanghai",
    "North Asia East Standard Time": "Asia/Irkutsk",
    "Singapore Standard Time": "Asia/Singapore",
    "W. Australia Standard Time": "Australia/Perth",
    "Taipei Standard Time": "Asia/Taipei",
    "Ulaanbaatar Standard Time": "Asia/Ulaanbaatar",
    "Aus Central W. Standard Time": "Australia/Eucla",
    "Transbaikal Standard Time": "Asia/Chita",
    "Tokyo Standard Time": "Asia/Tokyo",
    "North Korea Standard Time": "Asia/Pyongyang",
    "Korea Standard Time": "Asia/Seoul",
    "Yakutsk Standard Time": "Asia/Yakutsk",
    "Cen. Australia Standard Time": "Australia/Adelaide",
    "AUS Central Standard Time": "Australia/Darwin",
    "E. Australia Standard Time": "Australia/Brisbane",
    "AUS Eastern Standard Time": "Australia/Sydney",
    "West Pacific Standard Time": "Pacific/Port_Moresby",
    "Tasmania Standard Time": "Australia/Hobart",
    "Vladivostok Standard Time": "Asia/Vladivostok",
    "Lord Howe Standard Time": "Australia/Lord_Howe",
    "Bougainville Standard Time": "Pacific/Bougainville",
    "Russia Time Zone 10": "Asia/Srednekolymsk",
    "Magadan Standard Time": "Asia/Magadan",
    "Norfolk Standard Time": "Pacific/Norfolk",
    "Sakhalin Standard Time": "Asia/Sakhalin",
    "Central Pacific Standard Time": "Pacific/Guadalcanal",
    "Russia Time Zone 11": "Asia/Kamchatka",
    "New Zealand Standard Time": "Pacific/Auckland",
    "UTC+12": "Etc/GMT-12",
    "Fiji Standard Time": "Pacific/Fiji",
    "Chatham Islands Standard Time": "Pacific/Chatham",
    "UTC+13": "Etc/GMT-13",
    "Tonga Standard Time": "Pacific/Tongatapu",
    "Samoa Standard Time": "Pacific/Apia",
    "Line Islands Standard Time": "Pacific/Kiritimati",
}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# AML's enum members are the names without spaces (``TimeZone.PacificStandardTime``); accept those too.
_WINDOWS_LOOKUP = {_squash(name): iana for name, iana in WINDOWS_TIME_ZONES.items()}


def iana_time_zone(time_zone: str | None) -> str:
    """The IANA name for an AML (Windows) time zone name or an IANA name; ``None`` is UTC."""
    if time_zone is None:
        return "UTC"
    if isinstance(time_zone, enum.Enum):  # azureml.pipeline.core.schedule.TimeZone
        time_zone = time_zone.value
    if not isinstance(time_zone, str) or not time_zone.strip():
        raise ConfigurationError(
            "time_zone", f"{time_zone!r} is not a time zone name", 'give a name such as "Pacific Standard Time"'
        )
    mapped = _WINDOWS_LOOKUP.get(_squash(time_zone))
    if mapped is not None:
        return "UTC" if mapped == "Etc/UTC" else mapped
    if "/" in time_zone or time_zone.upper() == "UTC":
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
        else:
            return "UTC" if time_zone.upper() == "UTC" else time_zone
    raise ConfigurationError(
        "time_zone",
        f"unknown time zone {time_zone!r}",
        'use an AML TimeZone name (Windows, e.g. "Pacific Standard Time", "W. Europe Standard Time") '
        'or an IANA name (e.g. "America/Los_Angeles")',
    )


def _frequency(value: Any) -> str:
    if isinstance(value, str):
        for name in FREQUENCIES:
            if value.strip().lower() == name.lower():
                return name
    raise ConfigurationError("frequency", f"{value!r} is not an AML frequency", f"use one of {', '.join(FREQUENCIES)}")


def _int_list(field_name: str, value: Any, low: int, high: int) -> tuple[int, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, (int, str)) else list(value)
    out: set[int] = set()
    for item in items:
        whole = (isinstance(item, int) and not isinstance(item, bool)) or (
            isinstance(item, str) and item.strip().isdigit()
        )
        number = int(item) if whole else -1
        if number < low or number > high:
            raise ConfigurationError(
                field_name, f"{item!r} is not an integer from {low} to {high}", f"give integers from {low} to {high}"
            )
        out.add(number)
    if not out:
        raise ConfigurationError(field_name, "is empty", f"give at least one value, or leave {field_name} out")
    return tuple(sorted(out))


def _week_days(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else list(value)
    out: set[str] = set()
    for item in items:
        match = [d for d in WEEK_DAYS if isinstance(item, str) and item.strip().lower() == d.lower()]
        if not match:
            raise ConfigurationError("week_days", f"{item!r} is not a day of the week", f"use {', '.join(WEEK_DAYS)}")
        out.add(match[0])
    if not out:
        raise ConfigurationError("week_days", "is empty", "give at least one day, or leave week_days out")
    return tuple(d for d in WEEK_DAYS if d in out)


def _start_time(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = dt.datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M:%S")
        except ValueError:
            try:
                parsed = dt.datetime.strptime(value.strip(), "%Y-%m-%dT%H:%M")
            except ValueError:
                raise ConfigurationError(
                    "start_time",
                    f"{value!r} is not in AML's format YYYY-MM-DDThh:mm:ss",
                    'write it as "2025-01-31T09:30:00" (no offset; give the zone in time_zone)',
                ) from None
        value = parsed
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise ConfigurationError(
            "start_time", f"{value!r} is neither a datetime nor a string", 'give a datetime or "YYYY-MM-DDThh:mm:ss"'
        )
    if value.tzinfo is not None:
        raise ConfigurationError(
            "start_time",
            "has a tzinfo; AML takes a naive start_time read in time_zone",
            "drop the tzinfo (datetime.replace(tzinfo=None)) and pass the zone as time_zone",
        )
    return value.replace(second=0, microsecond=0)


@dataclass(frozen=True)
class ScheduleRecurrence:
    """AML SDK v1's ``ScheduleRecurrence``, validated as AML validated it (see the module docstring)."""

    frequency: str
    interval: int
    start_time: dt.datetime | str | None = None
    time_zone: str | None = None
    hours: Sequence[int] | None = None
    minutes: Sequence[int] | None = None
    week_days: Sequence[str] | None = None
    time_of_day: str | None = None
    # The zone as an IANA name, derived from time_zone.
    iana_time_zone: str = field(init=False)

    def __post_init__(self) -> None:
        put = object.__setattr__
        frequency = _frequency(self.frequency)
        put(self, "frequency", frequency)
        if isinstance(self.interval, bool) or not isinstance(self.interval, int) or self.interval < 1:
            raise ConfigurationError(
                "interval", f"{self.interval!r} is not a whole number of at least 1", "give interval=1 or more"
            )
        put(self, "start_time", _start_time(self.start_time))
        put(self, "iana_time_zone", iana_time_zone(self.time_zone))
        hours = _int_list("hours", self.hours, 0, 23)
        minutes = _int_list("minutes", self.minutes, 0, 59)
        week_days = _week_days(self.week_days)
        if self.time_of_day is not None:
            if hours is not None or minutes is not None:
                raise ConfigurationError(
                    "time_of_day", "is given with hours or minutes", "give either time_of_day or hours and minutes"
                )
            try:
                parsed = dt.datetime.strptime(str(self.time_of_day).strip(), "%H:%M")
            except ValueError:
                raise ConfigurationError(
                    "time_of_day", f"{self.time_of_day!r} is not hh:mm", 'write it as "15:30"'
                ) from None
            hours, minutes = (parsed.hour,), (parsed.minute,)
        for name, value in (("time_of_day", self.time_of_day), ("hours", hours), ("minutes", minutes)):
            if value is not None and frequency not in ("Day", "Week"):
                raise ConfigurationError(
                    name,
                    f"is only used with frequency Day or Week, not {frequency}",
                    f"use frequency='Day' or 'Week', or drop {name} (a {frequency} schedule fires at "
                    "start_time and then every interval)",
                )
        if week_days is not None and frequency != "Week":
            raise ConfigurationError(
                "week_days",
                f"is only used with frequency Week, not {frequency}",
                "use frequency='Week', or drop week_days",
            )
        put(self, "hours", hours)
        put(self, "minutes", minutes)
        put(self, "week_days", week_days)
        self._check_expressible()
        self.plan()  # every remaining refusal (a missing start to take a field from) at construction

    # -- derived values ------------------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.iana_time_zone)

    @property
    def _explicit_times(self) -> bool:
        return self.hours is not None or self.minutes is not None or self.week_days is not None

    @property
    def local_start(self) -> dt.datetime | None:
        """``start_time`` as an aware datetime in ``time_zone`` (to the minute)."""
        assert self.start_time is None or isinstance(self.start_time, dt.datetime)
        return None if self.start_time is None else self.start_time.replace(tzinfo=self.zone)

    def day_times(self) -> tuple[tuple[int, int], ...]:
        """The (hour, minute) fire times of a day of a ``Day``/``Week`` schedule."""
        start = self.local_start
        if self.hours is not None:
            hours: Iterable[int] = self.hours
        elif start is not None:
            hours = (start.hour,)
        else:
            raise ConfigurationError(
                "hours", "no hours and no start_time to take the hour from", "give hours=[...] or start_time"
            )
        minutes: Iterable[int] = self.minutes or ((start.minute,) if start is not None else (0,))
        return tuple(sorted((h, m) for h in hours for m in minutes))

    def fire_days(self) -> tuple[str, ...]:
        if self.week_days is not None:
            return tuple(self.week_days)
        start = self.local_start
        if start is None:
            raise ConfigurationError(
                "week_days",
                "a Week schedule without week_days takes its day from start_time, and there is none",
                "give week_days=[...] or start_time",
            )
        return (WEEK_DAYS[start.weekday()],)

    def _check_expressible(self) -> None:
        if self.frequency in ("Day", "Week") and self.interval > 1:
            slots = len(self.day_times()) * (len(self.fire_days()) if self.frequency == "Week" else 1)
            if slots > 1:
                raise ConfigurationError(
                    "interval",
                    f"every {self.interval} {self.frequency.lower()}s with {slots} fire times in each has no "
                    "built-in Airflow timetable",
                    "use interval=1, or one DAG schedule per fire time (one hour, minute and week day each)",
                )
            if self.start_time is None and self._explicit_times:
                raise ConfigurationError(
                    "start_time",
                    f"every {self.interval} {self.frequency.lower()}s needs a start to count from",
                    'give start_time="YYYY-MM-DDThh:mm:ss"',
                )

    @property
    def start_date(self) -> dt.datetime | None:
        """The DAG's ``start_date``: the earliest instant a run may fire (UTC), or ``None``."""
        plan = self.plan()
        return plan.start_date

    def plan(self) -> Plan:
        """What Airflow timetable reproduces this recurrence (no Airflow import)."""
        start = self.local_start
        n = self.interval
        if self.frequency in ("Minute", "Hour"):
            period = n if self.frequency == "Minute" else n * 60
            if start is None:
                return Plan("delta", delta_minutes=period)
            utc = start.astimezone(dt.timezone.utc)
            if _DAY_MINUTES % period == 0:
                offset = (utc.hour * 60 + utc.minute) % period
                return Plan("cron", crons=_day_crons(range(offset, _DAY_MINUTES, period)), tz="UTC", start_date=utc)
            return Plan("delta", delta_minutes=period, start_date=utc)
        if self.frequency in ("Day", "Week"):
            if start is None and not self._explicit_times:
                return Plan("delta", delta_minutes=n * _DAY_MINUTES * (7 if self.frequency == "Week" else 1))
            times = self.day_times()
            dows = "*" if self.frequency == "Day" else ",".join(str(_CRON_DOW[d]) for d in self.fire_days())
            first_allowed = None
            if start is not None:
                first_allowed = start + dt.timedelta(minutes=1) if self._explicit_times else start
            if n == 1:
                return Plan(
                    "cron",
                    crons=_time_crons(times, dom="*", month="*", dow=dows),
                    tz=self.iana_time_zone,
                    start_date=None if first_allowed is None else first_allowed.astimezone(dt.timezone.utc),
                    run_immediately=start is None,
                )
            assert first_allowed is not None  # refused in _check_expressible
            (hour, minute), day = times[0], self.fire_days()[0] if self.frequency == "Week" else None
            first = first_allowed.replace(hour=hour, minute=minute)
            if first < first_allowed:
                first += dt.timedelta(days=1)
            if day is not None:
                first += dt.timedelta(days=(WEEK_DAYS.index(day) - first.weekday()) % 7)
            step_days = n * (7 if self.frequency == "Week" else 1)
            return Plan("delta", delta_minutes=step_days * _DAY_MINUTES, start_date=first.astimezone(dt.timezone.utc))
        # Month
        if start is None:
            return Plan("delta", delta_months=n)
        if 12 % n == 0:
            months = "*" if n == 1 else ",".join(str((start.month - 1 + k) % 12 + 1) for k in range(0, 12, n))
            return Plan(
                "cron",
                crons=_time_crons(((start.hour, start.minute),), dom=str(start.day), month=months, dow="*"),
                tz=self.iana_time_zone,
                start_date=start.astimezone(dt.timezone.utc),
            )
        return Plan("delta", delta_months=n, start_date=start.astimezone(dt.timezone.utc))


def _time_crons(times: Iterable[tuple[int, int]], *, dom: str, month: str, dow: str) -> tuple[str, ...]:
    """Crons for the (hour, minute) pairs: one per distinct set of hours sharing the same minutes."""
    by_hour: dict[int, set[int]] = {}
    for hour, minute in times:
        by_hour.setdefault(hour, set()).add(minute)
    groups: dict[tuple[int, ...], list[int]] = {}
    for hour, minute_set in sorted(by_hour.items()):
        groups.setdefault(tuple(sorted(minute_set)), []).append(hour)
    crons = []
    for minute_list, hours in groups.items():
        hour_field = "*" if len(hours) == 24 else ",".join(map(str, hours))
        crons.append(f"{','.join(map(str, minute_list))} {hour_field} {dom} {month} {dow}")
    return tuple(crons)


def _day_crons(minutes_of_day: Iterable[int]) -> tuple[str, ...]:
    """Daily crons firing at the given minutes of the day (0..1439)."""
    times = [(m // 60, m % 60) for m in minutes_of_day]
    # Group by minute first (every 15 minutes is one cron "a,b,c,d * * * *", not 24).
    by_minute: dict[int, list[int]] = {}
    for hour, minute in times:
        by_minute.setdefault(minute, []).append(hour)
    groups: dict[tuple[int, ...], list[int]] = {}
    for minute, hours in sorted(by_minute.items()):
        groups.setdefault(tuple(sorted(hours)), []).append(minute)
    crons = []
    for hours_t, minute_list in groups.items():
        hour_field = "*" if len(hours_t) == 24 else ",".join(map(str, hours_t))
        crons.append(f"{','.join(map(str, minute_list))} {hour_field} * * *")
    return tuple(crons)


@dataclass(frozen=True)
class Plan:
    """An Airflow-free description of the timetable: ``kind`` is ``"cron"`` or ``"delta"``."""

    kind: str
    crons: tuple[str, ...] = ()
    tz: str = "UTC"
    delta_minutes: int | None = None
    delta_months: int | None = None
    start_date: dt.datetime | None = None
    run_immediately: bool = False

    @property
    def delta(self) -> dt.timedelta | relativedelta:
        if self.delta_months is not None:
            from dateutil.relativedelta import relativedelta

            return relativedelta(months=self.delta_months)
        assert self.delta_minutes is not None
        return dt.timedelta(minutes=self.delta_minutes)


def recurrence_timetable(recurrence: ScheduleRecurrence) -> Any:
    """Airflow's built-in timetable (``airflow.sdk``) that fires when AML's recurrence would.

    Pair it with the recurrence's start: ``DAG(schedule=recurrence_timetable(r), start_date=r.start_date,
    catchup=False)``.
    """
    from airflow.sdk import CronTriggerTimetable, DeltaTriggerTimetable, MultipleCronTriggerTimetable

    plan = recurrence.plan()
    if plan.kind == "delta":
        return DeltaTriggerTimetable(plan.delta)
    if len(plan.crons) == 1:
        return CronTriggerTimetable(plan.crons[0], timezone=plan.tz, run_immediately=plan.run_immediately)
    return MultipleCronTriggerTimetable(*plan.crons, timezone=plan.tz, run_immediately=plan.run_immediately)


def datastore_change_asset(
    datastore: str,
    path_on_datastore: str,
    polling_interval: float = 300.0,
    *,
    recursive: bool = False,
    settle_seconds: float | None = None,
    name: str = "",
) -> Any:
    """AML's datastore-change schedule (``Schedule.create(datastore=..., path_on_datastore=...,
    polling_interval=...)``) as an Airflow Asset with a watcher: ``schedule=[datastore_change_asset(...)]``
    starts one run per settled set of new or changed files under ``path_on_datastore`` (only the files directly
    in it unless ``recursive``, as AML). ``polling_interval`` is in seconds (AML's was in minutes); a change set
    has settled when the path looked the same for ``settle_seconds`` (default: one polling interval). A step
    reads the changed path with :func:`~airflow_provider_amlpipe.params.changed_data_path_input`.
    Needs Airflow's triggerer.
    """
    from airflow.sdk import Asset, AssetWatcher

    from airflow_provider_amlpipe.data.watch import check_path, watch_id
    from airflow_provider_amlpipe.triggers.datastore_change import DatastoreChangeTrigger

    path = check_path(path_on_datastore)
    if isinstance(polling_interval, bool) or not isinstance(polling_interval, (int, float)) or polling_interval <= 0:
        raise ConfigurationError(
            "polling_interval", f"expected seconds > 0, got {polling_interval!r}", "pass e.g. polling_interval=300"
        )
    ident = watch_id(datastore, path, recursive, name)
    trigger = DatastoreChangeTrigger(datastore, path, ident, float(polling_interval), recursive, settle_seconds)
    asset_name = f"amlpipe-datastore-change.{datastore}.{name or path.replace('/', '.')}"
    return Asset(name=asset_name, watchers=[AssetWatcher(name=f"watch-{ident}", trigger=trigger)])
