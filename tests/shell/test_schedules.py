"""AML ``ScheduleRecurrence`` -> Airflow timetable: fire times through Airflow's own ``next_dagrun_info``."""

from __future__ import annotations

import datetime as dt
import enum
import shutil
from typing import Any

import pendulum
import pytest
from support.dagtools import load_dag, write_dag
from support.paths import REPO
from support.session import DAGS_FOLDER

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.schedules import ScheduleRecurrence, iana_time_zone, recurrence_timetable


def core(recurrence: ScheduleRecurrence) -> Any:
    """The timetable as the scheduler sees it: the SDK object serialised and decoded (no plugin involved)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(recurrence_timetable(recurrence))


def fire_times(
    recurrence: ScheduleRecurrence, count: int = 5, *, catchup: bool = True, start: dt.datetime | None = None
) -> list[str]:
    """The first ``count`` run times (``run_after``), ISO in the recurrence's zone."""
    from airflow.timetables.base import TimeRestriction

    timetable = core(recurrence)
    earliest = start if start is not None else recurrence.start_date
    restriction = TimeRestriction(
        earliest=None if earliest is None else pendulum.instance(earliest), latest=None, catchup=catchup
    )
    out, last = [], None
    for _ in range(count):
        info = timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
        assert info is not None
        out.append(info.run_after.in_timezone(recurrence.iana_time_zone).isoformat())
        last = info.data_interval
    return out


R = ScheduleRecurrence

# (id, recurrence, timetable class, first fire times in the recurrence's zone)
CASES: list[tuple[str, ScheduleRecurrence, str, list[str]]] = [
    (
        "minute-15-from-start",
        R("Minute", 15, start_time="2025-01-01T10:07:00"),
        "CronTriggerTimetable",
        [
            "2025-01-01T10:07:00+00:00",
            "2025-01-01T10:22:00+00:00",
            "2025-01-01T10:37:00+00:00",
            "2025-01-01T10:52:00+00:00",
            "2025-01-01T11:07:00+00:00",
        ],
    ),
    (
        "minute-1",
        R("minute", 1, start_time="2025-01-01T23:58:00"),
        "CronTriggerTimetable",
        [
            "2025-01-01T23:58:00+00:00",
            "2025-01-01T23:59:00+00:00",
            "2025-01-02T00:00:00+00:00",
            "2025-01-02T00:01:00+00:00",
            "2025-01-02T00:02:00+00:00",
        ],
    ),
    (
        "minute-90-crosses-midnight-two-crons",
        R("Minute", 90, start_time="2025-01-01T22:07:00"),
        "MultipleCronTriggerTimetable",
        [
            "2025-01-01T22:07:00+00:00",
            "2025-01-01T23:37:00+00:00",
            "2025-01-02T01:07:00+00:00",
            "2025-01-02T02:37:00+00:00",
            "2025-01-02T04:07:00+00:00",
        ],
    ),
    (
        "minute-7-not-a-divisor-of-a-day-delta",
        R("Minute", 7, start_time="2025-01-01T23:50:00"),
        "DeltaTriggerTimetable",
        [
            "2025-01-01T23:50:00+00:00",
            "2025-01-01T23:57:00+00:00",
            "2025-01-02T00:04:00+00:00",
            "2025-01-02T00:11:00+00:00",
            "2025-01-02T00:18:00+00:00",
        ],
    ),
    (
        "hour-3-cron-anchored-on-start",
        R("Hour", 3, start_time="2025-01-01T19:15:00"),
        "CronTriggerTimetable",
        [
            "2025-01-01T19:15:00+00:00",
            "2025-01-01T22:15:00+00:00",
            "2025-01-02T01:15:00+00:00",
            "2025-01-02T04:15:00+00:00",
            "2025-01-02T07:15:00+00:00",
        ],
    ),
    (
        "hour-5-delta",
        R("Hour", 5, start_time="2025-01-01T10:07:00"),
        "DeltaTriggerTimetable",
        [
            "2025-01-01T10:07:00+00:00",
            "2025-01-01T15:07:00+00:00",
            "2025-01-01T20:07:00+00:00",
            "2025-01-02T01:07:00+00:00",
            "2025-01-02T06:07:00+00:00",
        ],
    ),
    (
        "hour-3-half-hour-zone-india",
        R("Hour", 3, start_time="2025-01-01T10:00:00", time_zone="India Standard Time"),
        "CronTriggerTimetable",
        [
            "2025-01-01T10:00:00+05:30",
            "2025-01-01T13:00:00+05:30",
            "2025-01-01T16:00:00+05:30",
            "2025-01-01T19:00:00+05:30",
            "2025-01-01T22:00:00+05:30",
        ],
    ),
    (
        # Elapsed hours: across the spring-forward gap the wall clock jumps 01:30 -> 03:30.
        "hour-1-dst-spring-forward-pacific",
        R("Hour", 1, start_time="2024-03-10T00:30:00", time_zone="Pacific Standard Time"),
        "CronTriggerTimetable",
        [
            "2024-03-10T00:30:00-08:00",
            "2024-03-10T01:30:00-08:00",
            "2024-03-10T03:30:00-07:00",
            "2024-03-10T04:30:00-07:00",
            "2024-03-10T05:30:00-07:00",
        ],
    ),
    (
        # Without hours/minutes a Day schedule fires at start_time's time of day, in the zone: 09:15 holds across DST.
        "day-1-start-time-of-day-dst-pacific",
        R("Day", 1, start_time="2024-03-08T09:15:00", time_zone="Pacific Standard Time"),
        "CronTriggerTimetable",
        [
            "2024-03-08T09:15:00-08:00",
            "2024-03-09T09:15:00-08:00",
            "2024-03-10T09:15:00-07:00",
            "2024-03-11T09:15:00-07:00",
            "2024-03-12T09:15:00-07:00",
        ],
    ),
    (
        "day-1-hours-x-minutes",
        R("Day", 1, hours=[17, 9], minutes=[0, 30], start_time="2025-01-01T00:00:00"),
        "CronTriggerTimetable",
        [
            "2025-01-01T09:00:00+00:00",
            "2025-01-01T09:30:00+00:00",
            "2025-01-01T17:00:00+00:00",
            "2025-01-01T17:30:00+00:00",
            "2025-01-02T09:00:00+00:00",
        ],
    ),
    (
        "day-1-hours-only-minute-from-start",
        R("Day", 1, hours=[6], start_time="2025-01-01T00:45:00", time_zone="Europe/Paris"),
        "CronTriggerTimetable",
        [
            "2025-01-01T06:45:00+01:00",
            "2025-01-02T06:45:00+01:00",
            "2025-01-03T06:45:00+01:00",
            "2025-01-04T06:45:00+01:00",
            "2025-01-05T06:45:00+01:00",
        ],
    ),
    (
        # AML: a start_time that matches time_of_day is not itself a run; the first is the next one.
        "day-1-time-of-day-start-matches-is-skipped",
        R("Day", 1, time_of_day="15:30", start_time="2025-01-01T15:30:00"),
        "CronTriggerTimetable",
        [
            "2025-01-02T15:30:00+00:00",
            "2025-01-03T15:30:00+00:00",
            "2025-01-04T15:30:00+00:00",
            "2025-01-05T15:30:00+00:00",
            "2025-01-06T15:30:00+00:00",
        ],
    ),
    (
        "day-2-from-start",
        R("Day", 2, start_time="2025-01-30T09:00:00"),
        "DeltaTriggerTimetable",
        [
            "2025-01-30T09:00:00+00:00",
            "2025-02-01T09:00:00+00:00",
            "2025-02-03T09:00:00+00:00",
            "2025-02-05T09:00:00+00:00",
            "2025-02-07T09:00:00+00:00",
        ],
    ),
    (
        # The notebook's schedule: every other day at 22:30, counted from the first 22:30 after start_time.
        "day-2-at-22-30-notebook",
        R("Day", 2, hours=[22], minutes=[30], start_time="2025-01-01T23:00:00"),
        "DeltaTriggerTimetable",
        [
            "2025-01-02T22:30:00+00:00",
            "2025-01-04T22:30:00+00:00",
            "2025-01-06T22:30:00+00:00",
            "2025-01-08T22:30:00+00:00",
            "2025-01-10T22:30:00+00:00",
        ],
    ),
    (
        # Documented limit: "every N days" is elapsed time, so in a DST zone the wall clock moves an hour.
        "day-2-dst-pacific-elapsed-time",
        R("Day", 2, start_time="2024-03-08T09:00:00", time_zone="Pacific Standard Time"),
        "DeltaTriggerTimetable",
        [
            "2024-03-08T09:00:00-08:00",
            "2024-03-10T10:00:00-07:00",
            "2024-03-12T10:00:00-07:00",
            "2024-03-14T10:00:00-07:00",
            "2024-03-16T10:00:00-07:00",
        ],
    ),
    (
        # Week days across Europe's DST change (31 March 2024); start matches Monday 09:00, so it is skipped.
        "week-1-monday-friday-dst-europe",
        R(
            "Week",
            1,
            week_days=["Monday", "friday"],
            time_of_day="09:00",
            start_time="2024-03-25T09:00:00",
            time_zone="W. Europe Standard Time",
        ),
        "CronTriggerTimetable",
        [
            "2024-03-29T09:00:00+01:00",
            "2024-04-01T09:00:00+02:00",
            "2024-04-05T09:00:00+02:00",
            "2024-04-08T09:00:00+02:00",
            "2024-04-12T09:00:00+02:00",
        ],
    ),
    (
        "week-1-day-and-time-from-start",
        R("Week", 1, start_time="2025-01-01T08:00:00"),  # a Wednesday
        "CronTriggerTimetable",
        [
            "2025-01-01T08:00:00+00:00",
            "2025-01-08T08:00:00+00:00",
            "2025-01-15T08:00:00+00:00",
            "2025-01-22T08:00:00+00:00",
            "2025-01-29T08:00:00+00:00",
        ],
    ),
    (
        "week-1-weekend-two-times",
        R("Week", 1, week_days=["Saturday", "Sunday"], hours=[8, 20], minutes=[0], start_time="2025-01-01T00:00:00"),
        "CronTriggerTimetable",
        [
            "2025-01-04T08:00:00+00:00",
            "2025-01-04T20:00:00+00:00",
            "2025-01-05T08:00:00+00:00",
            "2025-01-05T20:00:00+00:00",
            "2025-01-11T08:00:00+00:00",
        ],
    ),
    (
        "week-2-tuesday",
        R("Week", 2, week_days=["Tuesday"], hours=[7], minutes=[0], start_time="2025-01-01T08:00:00"),
        "DeltaTriggerTimetable",
        [
            "2025-01-07T07:00:00+00:00",
            "2025-01-21T07:00:00+00:00",
            "2025-02-04T07:00:00+00:00",
            "2025-02-18T07:00:00+00:00",
            "2025-03-04T07:00:00+00:00",
        ],
    ),
    (
        "month-1-tokyo",
        R("Month", 1, start_time="2025-01-15T06:00:00", time_zone="Tokyo Standard Time"),
        "CronTriggerTimetable",
        [
            "2025-01-15T06:00:00+09:00",
            "2025-02-15T06:00:00+09:00",
            "2025-03-15T06:00:00+09:00",
            "2025-04-15T06:00:00+09:00",
            "2025-05-15T06:00:00+09:00",
        ],
    ),
    (
        "month-3-wraps-the-year",
        R("Month", 3, start_time="2024-11-15T06:00:00"),
        "CronTriggerTimetable",
        [
            "2024-11-15T06:00:00+00:00",
            "2025-02-15T06:00:00+00:00",
            "2025-05-15T06:00:00+00:00",
            "2025-08-15T06:00:00+00:00",
            "2025-11-15T06:00:00+00:00",
        ],
    ),
    (
        "month-5-delta",
        R("Month", 5, start_time="2024-11-15T06:00:00"),
        "DeltaTriggerTimetable",
        [
            "2024-11-15T06:00:00+00:00",
            "2025-04-15T06:00:00+00:00",
            "2025-09-15T06:00:00+00:00",
            "2026-02-15T06:00:00+00:00",
            "2026-07-15T06:00:00+00:00",
        ],
    ),
    (
        # Documented choice: a day of the month some months lack is skipped in those months (cron's rule).
        "month-1-on-the-31st",
        R("Month", 1, start_time="2025-01-31T12:00:00"),
        "CronTriggerTimetable",
        [
            "2025-01-31T12:00:00+00:00",
            "2025-03-31T12:00:00+00:00",
            "2025-05-31T12:00:00+00:00",
            "2025-07-31T12:00:00+00:00",
            "2025-08-31T12:00:00+00:00",
        ],
    ),
]


@pytest.mark.parametrize(("recurrence", "kind", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fire_times(recurrence: ScheduleRecurrence, kind: str, expected: list[str]) -> None:
    assert type(recurrence_timetable(recurrence)).__name__ == kind  # the SDK class a DAG file gets
    assert type(core(recurrence)).__name__ == kind  # and the built-in one the scheduler decodes
    assert fire_times(recurrence, len(expected)) == expected


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> pendulum.DateTime:
    now = pendulum.datetime(2025, 3, 1, 12, 34, tz="UTC")
    monkeypatch.setattr("airflow.timetables.trigger.utcnow", lambda: now)
    return now


def test_start_time_in_the_future_waits_for_it(frozen_now: pendulum.DateTime) -> None:
    r = R("Day", 1, hours=[9], minutes=[0], start_time="2025-06-01T00:00:00", time_zone="Eastern Standard Time")
    assert fire_times(r, 2, catchup=False) == ["2025-06-01T09:00:00-04:00", "2025-06-02T09:00:00-04:00"]


def test_start_time_in_the_past_with_catchup_off(frozen_now: pendulum.DateTime) -> None:
    # AML: a past start_time runs first at the next calculated time. Airflow with catchup=False first
    # runs the latest scheduled time not after now (here 12:30, 4 minutes ago), then keeps the schedule.
    r = R("Minute", 15, start_time="2020-01-01T00:00:00")
    assert fire_times(r, 3, catchup=False) == [
        "2025-03-01T12:30:00+00:00",
        "2025-03-01T12:45:00+00:00",
        "2025-03-01T13:00:00+00:00",
    ]


def test_without_start_time_runs_at_once_then_every_interval(frozen_now: pendulum.DateTime) -> None:
    # AML: "If None is provided, the first workload is run instantly and the future workloads are run
    # based on the schedule" - a delta timetable without a start_date does exactly that.
    r = R("Hour", 6)
    assert r.start_date is None
    assert type(recurrence_timetable(r)).__name__ == "DeltaTriggerTimetable"
    assert fire_times(r, 3, catchup=False) == [
        "2025-03-01T12:34:00+00:00",
        "2025-03-01T18:34:00+00:00",
        "2025-03-02T00:34:00+00:00",
    ]


def test_without_start_time_but_with_the_times_runs_the_latest_at_once(frozen_now: pendulum.DateTime) -> None:
    r = R("Week", 1, week_days=["Saturday"], time_of_day="10:00")  # 2025-03-01 is a Saturday
    assert fire_times(r, 2, catchup=False) == ["2025-03-01T10:00:00+00:00", "2025-03-08T10:00:00+00:00"]


def test_start_date_is_utc_and_one_minute_after_a_matching_start() -> None:
    assert R("Day", 1, hours=[9], start_time="2025-01-01T09:00:00").start_date == dt.datetime(
        2025, 1, 1, 9, 1, tzinfo=dt.timezone.utc
    )
    assert R("Minute", 5, start_time="2025-07-01T09:00:00", time_zone="Pacific Standard Time").start_date == (
        dt.datetime(2025, 7, 1, 16, 0, tzinfo=dt.timezone.utc)
    )


def test_accepted_spellings() -> None:
    class TimeZone(enum.Enum):  # shaped like azureml.pipeline.core.schedule.TimeZone
        PacificStandardTime = "Pacific Standard Time"

    assert iana_time_zone("Pacific Standard Time") == "America/Los_Angeles"
    assert iana_time_zone("PacificStandardTime") == "America/Los_Angeles"
    assert iana_time_zone(TimeZone.PacificStandardTime) == "America/Los_Angeles"  # type: ignore[arg-type]
    assert iana_time_zone("America/Los_Angeles") == "America/Los_Angeles"
    assert iana_time_zone("UTC") == iana_time_zone(None) == "UTC"
    assert iana_time_zone("GMT Standard Time") == "Europe/London"
    r = R("week", 1, start_time=dt.datetime(2025, 1, 1, 8, 0, 59), week_days="monday", hours=8, minutes=["05", 0])
    assert (r.frequency, r.week_days, r.hours, r.minutes, r.start_time) == (
        "Week",
        ("Monday",),
        (8,),
        (0, 5),
        dt.datetime(2025, 1, 1, 8, 0),
    )


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("frequency", {"frequency": "Fortnight", "interval": 1}, "frequency", "Minute, Hour, Day, Week, Month"),
    ("interval-0", {"frequency": "Day", "interval": 0}, "interval", "interval=1 or more"),
    ("interval-str", {"frequency": "Day", "interval": "2"}, "interval", "interval=1 or more"),
    ("interval-bool", {"frequency": "Day", "interval": True}, "interval", "interval=1 or more"),
    ("hours-with-minute", {"frequency": "Minute", "interval": 5, "hours": [1]}, "hours", "frequency='Day' or 'Week'"),
    ("minutes-with-hour", {"frequency": "Hour", "interval": 1, "minutes": [5]}, "minutes", "drop minutes"),
    ("hours-with-month", {"frequency": "Month", "interval": 1, "hours": [5]}, "hours", "frequency='Day'"),
    ("time-of-day-with-hour", {"frequency": "Hour", "interval": 1, "time_of_day": "10:00"}, "time_of_day", "Week"),
    ("week-days-with-day", {"frequency": "Day", "interval": 1, "week_days": ["Monday"]}, "week_days", "Week"),
    ("week-days-with-month", {"frequency": "Month", "interval": 1, "week_days": ["Monday"]}, "week_days", "Week"),
    ("hour-24", {"frequency": "Day", "interval": 1, "hours": [24]}, "hours", "from 0 to 23"),
    ("hour-float", {"frequency": "Day", "interval": 1, "hours": [9.5]}, "hours", "from 0 to 23"),
    ("hour-bool", {"frequency": "Day", "interval": 1, "hours": [True]}, "hours", "from 0 to 23"),
    ("minute-60", {"frequency": "Day", "interval": 1, "hours": [1], "minutes": [60]}, "minutes", "from 0 to 59"),
    ("hours-empty", {"frequency": "Day", "interval": 1, "hours": []}, "hours", "at least one"),
    ("week-day-typo", {"frequency": "Week", "interval": 1, "week_days": ["Funday"]}, "week_days", "Monday"),
    (
        "time-of-day-and-hours",
        {"frequency": "Day", "interval": 1, "time_of_day": "10:00", "hours": [1]},
        "time_of_day",
        "either time_of_day or hours",
    ),
    ("time-of-day-format", {"frequency": "Day", "interval": 1, "time_of_day": "25:00"}, "time_of_day", "15:30"),
    (
        "time-zone",
        {"frequency": "Day", "interval": 1, "time_zone": "Mars Standard Time"},
        "time_zone",
        "Pacific Standard Time",
    ),
    (
        "start-time-format",
        {"frequency": "Day", "interval": 1, "start_time": "01/02/2025"},
        "start_time",
        "2025-01-31T09:30:00",
    ),
    (
        "start-time-aware",
        {"frequency": "Day", "interval": 1, "start_time": dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)},
        "start_time",
        "time_zone",
    ),
    (
        "two-week-days-every-2-weeks",
        {
            "frequency": "Week",
            "interval": 2,
            "week_days": ["Monday", "Friday"],
            "hours": [9],
            "start_time": "2025-01-01T00:00:00",
        },
        "interval",
        "interval=1",
    ),
    (
        "two-times-every-3-days",
        {"frequency": "Day", "interval": 3, "hours": [9, 17], "start_time": "2025-01-01T00:00:00"},
        "interval",
        "one DAG schedule per fire time",
    ),
    (
        "every-2-days-at-22-no-start",
        {"frequency": "Day", "interval": 2, "hours": [22], "minutes": [30]},
        "start_time",
        "start_time=",
    ),
    ("minutes-without-hours-or-start", {"frequency": "Day", "interval": 1, "minutes": [0, 30]}, "hours", "hours=[...]"),
    ("week-without-days-or-start", {"frequency": "Week", "interval": 1, "hours": [9]}, "week_days", "week_days=[...]"),
]


@pytest.mark.parametrize(("kwargs", "field", "fix"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validation_errors(kwargs: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        ScheduleRecurrence(**kwargs)
    assert raised.value.field == field
    assert fix in raised.value.fix, raised.value


@pytest.mark.usefixtures("airflow_db")
def test_a_dag_using_it_parses_and_keeps_its_timetable() -> None:
    write_dag(
        "sched_weekly",
        """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow_provider_amlpipe.schedules import ScheduleRecurrence, recurrence_timetable

        r = ScheduleRecurrence(frequency="Week", interval=1, week_days=["Monday", "Thursday"], hours=[6, 18],
                               minutes=[15], time_zone="Pacific Standard Time", start_time="2025-01-01T00:00:00")
        with DAG("sched_weekly", schedule=recurrence_timetable(r), start_date=r.start_date, catchup=False):
            EmptyOperator(task_id="noop")
        """,
    )
    dag = load_dag("sched_weekly")
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"
    assert dag.timetable.expression == "15 6,18 * * 1,4"

    from airflow.serialization.serialized_objects import DagSerialization

    restored = DagSerialization.from_dict(DagSerialization.to_dict(dag)).timetable.serialize()
    assert (restored["expression"], restored["timezone"]) == ("15 6,18 * * 1,4", "America/Los_Angeles")


@pytest.mark.usefixtures("airflow_db")
def test_example_dag_parses() -> None:
    shutil.copy(REPO / "dags" / "aml_schedule.py", DAGS_FOLDER / "aml_schedule.py")
    dag = load_dag("aml_schedule")
    assert type(dag.timetable).__name__ == "DeltaTriggerTimetable"
    assert dag.start_date == pendulum.datetime(2025, 1, 1, 22, 30, tz="UTC")
    assert [t.task_id for t in dag.tasks] == ["train"]
