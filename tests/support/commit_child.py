"""A step run in its own process, for fault-injection tests (``AMLPIPE_FAULTS`` decides where it dies).

    python commit_child.py STORE_ROOT CODE COUNTER_FILE

Runs one three-output step whose fingerprint depends on CODE: reuse, wait for an identical step,
or execute (appending a line to COUNTER_FILE) and commit. Prints one JSON line: whether it reused
and the output refs. ``TTL`` and ``BODY_SECONDS`` in the environment tune the lease and the body.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from airflow_provider_amlpipe.data.datastore import LocalDatastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.hashing import Hasher, StatCache
from airflow_provider_amlpipe.reuse.fingerprint import Fingerprint
from airflow_provider_amlpipe.steps.runner import Reused, Run, StepPlan, StepRunner, StepWorkspace, Wait

OUTPUTS = ("model", "metrics", "report")
FILES_PER_OUTPUT = 4


def expected_files(code: str, output: str) -> dict[str, str]:
    """What the step writes into ``output`` for ``code``."""
    return {f"part-{i}.txt": f"{code}-{output}-{i}\n" * 50 for i in range(FILES_PER_OUTPUT)}


def plan_for(code: str) -> StepPlan:
    names = {o: f"faults.{o}" for o in OUTPUTS}
    parts = {"kind": "fault-test", "code": code, "outputs": names}
    return StepPlan("faults.step", {}, [Output(o) for o in OUTPUTS], names, Fingerprint(parts), {"run_id": code})


def main(root: str, code: str, counter: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    runner = StepRunner(
        LocalDatastore("s", root), Hasher(StatCache(Path(root).parent / "sc.sqlite")), logging.getLogger("child")
    )
    plan = plan_for(code)
    ttl = float(os.environ.get("TTL", "10"))
    while True:
        decision = runner.decide(plan, allow_reuse=True, regenerate=False, lease_ttl=ttl)
        if not isinstance(decision, Wait):
            break
        time.sleep(0.1)
    if isinstance(decision, Reused):
        print(json.dumps({"reused": True, "outputs": decision.outputs}))
        return
    assert isinstance(decision, Run)

    def body(workspace: StepWorkspace) -> None:
        with open(counter, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
        for output in OUTPUTS:
            for name, text in expected_files(code, output).items():
                (workspace.outputs[output] / name).write_text(text, encoding="utf-8")
        time.sleep(float(os.environ.get("BODY_SECONDS", "0")))

    result = runner.run(plan, decision, {}, body)
    print(json.dumps({"reused": False, "outputs": result.outputs}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
