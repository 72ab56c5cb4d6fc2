"""The local demo: run the example pipelines three times and show what step reuse saves.

1. first run: every step runs;
2. unchanged rerun: every step is reused, nothing executes;
3. after editing one step's script (``extract`` of ``aml_data_dependency``): that step and the
   step whose input really changed run again, everything else is reused.

Everything lives under ``.demo/`` in the repository (an Airflow home on SQLite, a copy of
``dags/``, the local datastore), recreated on each invocation. Exits non-zero if reuse did not
behave as described, so the demo is also a smoke test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORK = REPO / ".demo"
HOME = WORK / "airflow_home"
DAGS = WORK / "dags"
DAG_IDS = ("aml_getting_started", "aml_data_dependency")
EDITED = DAGS / "scripts" / "data_dependency" / "extract" / "extract.py"


def prepare() -> None:
    shutil.rmtree(WORK, ignore_errors=True)
    HOME.mkdir(parents=True)
    shutil.copytree(REPO / "dags", DAGS, ignore=shutil.ignore_patterns("demo", "__pycache__"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "AMLPIPE_STAT_CACHE": str(WORK / "statcache.sqlite"),
            "AIRFLOW_CONN_AMLPIPE_SAMPLES": json.dumps(
                {"conn_type": "amlpipe_local", "extra": {"path": str(DAGS / "data")}}
            ),
        }
    )
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)


def run_all(title: str) -> dict[str, set[str]]:
    """Run both DAGs once; print a table per DAG; return the steps that ran, per DAG."""
    from airflow.dag_processing.dagbag import DagBag

    from airflow_provider_amlpipe.shell.run_summary import format_table, step_statuses

    print(f"\n=== {title} ===")
    bag = DagBag(dag_folder=str(DAGS))
    ran: dict[str, set[str]] = {}
    for dag_id in DAG_IDS:
        dagrun = bag.get_dag(dag_id).test(logical_date=None)
        print(f"\n{dag_id}  ({dagrun.state})")
        print(format_table(dag_id, dagrun.run_id))
        if str(dagrun.state) != "success":
            raise SystemExit(f"{dag_id} did not succeed; see the task logs above")
        ran[dag_id] = {t for t, s in step_statuses(dag_id, dagrun.run_id).items() if not s["reused"]}
    return ran


def check(label: str, actual: dict[str, set[str]], expected: dict[str, set[str]]) -> None:
    if actual != expected:
        raise SystemExit(f"{label}: expected these steps to run {expected}, but these ran {actual}")


def main() -> None:
    prepare()
    first = run_all("Run 1: first run (everything executes)")
    check(
        "run 1",
        first,
        {
            "aml_getting_started": {"train", "extract", "compare"},
            "aml_data_dependency": {"train", "extract", "compare"},
        },
    )
    second = run_all("Run 2: unchanged rerun (everything is reused)")
    check("run 2", second, {d: set() for d in DAG_IDS})
    EDITED.write_text(EDITED.read_text().replace("FARE_BANDS = (10, 30, 80)", "FARE_BANDS = (10, 30, 100)"))
    print(f"\nEdited {EDITED.relative_to(WORK)}: FARE_BANDS = (10, 30, 100)")
    third = run_all("Run 3: after editing aml_data_dependency's extract step")
    check("run 3", third, {"aml_getting_started": set(), "aml_data_dependency": {"extract", "compare"}})
    print("\nAs expected: run 2 executed nothing; run 3 executed only the edited step and its dependant.")


if __name__ == "__main__":
    main()
