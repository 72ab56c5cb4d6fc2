"""A ParallelRun step on ``node_count`` nodes of a remote compute (Azure Batch): one task per node.

Runs inside the step base's ``execute`` (the base decides, holds the lease and commits). This worker
lists and keys the items (the workspace holds the inputs), cuts the ones not recorded yet into
mini-batches and gives each node a contiguous share of them (:func:`~airflow_provider_amlpipe.parallel.
nodes.shares`). Each node is a job of the remote-job base (:class:`~airflow_provider_amlpipe.steps.
remote_run.RemoteStepRun`): the driver runs there over its share with ``process_count_per_node`` workers
(:mod:`~airflow_provider_amlpipe.steps.node_launch` starts it) and sends back its rows, summary,
records and metrics. A node whose task fails is run again, up to ``run_max_try`` times; after that its
share's items count as failed. The nodes' results are merged (:func:`~airflow_provider_amlpipe.parallel.
nodes.merge`) and the failure limits applied to all of them together.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

from airflow_provider_amlpipe.compute.batch_pool import KIND as BATCH_KIND
from airflow_provider_amlpipe.compute.remote import LineSink, remote_job_id
from airflow_provider_amlpipe.data.datastore import Datastore
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import StepFailedError
from airflow_provider_amlpipe.hashing import Hasher, list_tree
from airflow_provider_amlpipe.parallel.driver import DriverSpec, plan_items, run_parallel
from airflow_provider_amlpipe.parallel.items import Item, MiniBatch
from airflow_provider_amlpipe.parallel.nodes import (
    NODE_METRICS,
    NODE_RECORDS,
    NODE_REUSED,
    NODE_STATE,
    NodeResult,
    check,
    merge,
)
from airflow_provider_amlpipe.parallel.nodes import shares as node_shares
from airflow_provider_amlpipe.parallel.pool import ThresholdExceededError
from airflow_provider_amlpipe.steps.node_launch import STATE_DIR, batch_python_job
from airflow_provider_amlpipe.steps.parallel_run import DRIVER_MODULE, ParallelRunStep
from airflow_provider_amlpipe.steps.remote_run import RemoteStepRun, RemoteTarget
from airflow_provider_amlpipe.steps.runner import StepLog, StepPlan, StepWorkspace

NODE_SPEC = f"{STATE_DIR}/driver-spec.json"
NODE_KNOWN = f"{STATE_DIR}/known.json"


class ParallelNodes:
    """Runs a :class:`ParallelRunStep` on a remote compute's nodes (see the module's docstring)."""

    def __init__(
        self, step: ParallelRunStep, target: RemoteTarget, pool_id: str, log: StepLog, poll_interval: float
    ) -> None:
        self.step = step
        self.target = target
        self.pool_id = pool_id
        self.log = log
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._runs: list[RemoteStepRun] = []
        self._stopped = False

    def terminate(self) -> None:
        """Cancel every node's job (``on_kill``, any thread)."""
        with self._lock:
            self._stopped = True
            runs = list(self._runs)
        for run in runs:
            run.terminate()

    def run(self, plan: StepPlan, workspace: StepWorkspace, store: Datastore, job_key: str) -> None:
        """Process the items not recorded yet on the nodes; fill the workspace's output, metrics and record
        log as the driver on this worker would. ``job_key`` is stable across retries of the task."""
        local = self.step.driver_spec(workspace)
        known: dict[str, list[str]] = json.loads(self.step.known_records_file(workspace).read_text(encoding="utf-8"))
        items, cut = plan_items(local, Hasher())
        batches = cut([item for item in items if item.key not in known])
        if not batches:
            # Every row comes from the records: the driver writes them here, no worker (nor node) starts.
            run_parallel(local, lambda message: self.log.info("[parallel] %s", message))
            return
        ranges = node_shares(items, batches, self.step.config.node_count)
        self.log.info(
            "%d items: %d to process in %d mini-batches on %d node(s) of pool %r (%s)",
            len(items),
            sum(len(b.items) for b in batches),
            len(batches),
            len(ranges),
            self.pool_id,
            self.target.name,
        )
        results: list[NodeResult | BaseException] = [StepFailedError("not run")] * len(ranges)
        positions = {item.index: position for position, item in enumerate(items)}

        def node(index: int, share: tuple[int, int]) -> None:
            try:
                mine = [b for b in batches if share[0] <= positions[b.first] < share[1]]
                results[index] = self._node(plan, workspace, store, job_key, index, share, items, mine, known)
            except BaseException as exc:  # re-raised below, in the step's thread
                results[index] = exc

        threads = [
            threading.Thread(target=node, args=(index, share), name=f"amlpipe-node-{index}", daemon=True)
            for index, share in enumerate(ranges)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results:
            if isinstance(result, BaseException):
                raise result
        finished = [r for r in results if isinstance(r, NodeResult)]
        append_row = self.step.config.append_row_file_name if self.step.config.output_action == "append_row" else None
        merged = merge(finished, items, workspace.outputs[self.step.output_name], append_row)
        log_file = self.step.record_log_file(workspace)
        log_file.write_text("".join(line + "\n" for line in merged.records), encoding="utf-8")
        if self.step.summary_only:
            self.step.reused_log_file(workspace).write_text(json.dumps(merged.reused), encoding="utf-8")
        with open(workspace.metrics_file, "a", encoding="utf-8") as handle:
            for name, value in merged.metrics.items():
                handle.write(json.dumps({"name": name, "value": value, "step": None}) + "\n")
        try:
            check(self.step.pool_settings(), merged)
        except ThresholdExceededError as exc:
            self.log.warning("[parallel] FAILED: %s", exc)
            self.log.warning("[parallel] summary: %s", json.dumps(merged.summary))
            raise
        failed = merged.summary["items_failed"]
        self.log.info("[parallel] done on %d node(s): %d items failed", len(finished), failed)

    def _node(
        self,
        plan: StepPlan,
        workspace: StepWorkspace,
        store: Datastore,
        job_key: str,
        index: int,
        share: tuple[int, int],
        items: list[Item],
        batches: list[MiniBatch],
        known: dict[str, list[str]],
    ) -> NodeResult:
        """One node's share, tried up to ``run_max_try`` times."""
        step, config = self.step, self.step.config
        scratch = workspace.root / "nodes" / str(index)
        spec_file, known_file = scratch / "driver-spec.json", scratch / "known.json"
        scratch.mkdir(parents=True, exist_ok=True)
        self._node_spec(share).dump(spec_file)
        mine = {item.key: known[item.key] for item in items[share[0] : share[1]] if item.key in known}
        known_file.write_text(json.dumps(mine), encoding="utf-8")
        name = step.output_name
        node_plan = replace(plan, outputs=[Output(name), Output(NODE_STATE)], dataset_names={})
        errors: list[str] = []
        for attempt in range(config.run_max_try):
            folder = scratch / f"try-{attempt}"
            job = batch_python_job(
                python=str(config.environment.interpreter or "python3"),
                code={**self._code(), NODE_SPEC: spec_file, NODE_KNOWN: known_file},
                program=["-m", DRIVER_MODULE, NODE_SPEC],
                input_names=list(plan.inputs),
                output_names=[name, NODE_STATE],
                pool_id=self.pool_id,
                scratch=folder / "launch",
                step_id=plan.step_id,
                params=step.params,
                job_name=f"{plan.step_id} node {index}",
                output_hint=step.output_hint,
            )
            run = RemoteStepRun(self.target, BATCH_KIND, self.log, self._sink(index), self.poll_interval)
            with self._lock:
                if self._stopped:
                    raise StepFailedError("the step was stopped")
                self._runs.append(run)
            job_id = remote_job_id(plan.fingerprint.digest, f"{job_key}.node{index}.try{attempt}")
            try:
                run.run(node_plan, job, job_id, store, folder / "remote", folder / "outputs", (name, NODE_STATE))
            except StepFailedError as exc:
                if self._stopped:
                    raise
                errors = [str(exc)]
                self.log.warning("node %d failed (try %d of %d): %s", index, attempt + 1, config.run_max_try, exc)
                continue
            return NodeResult(share, folder / "outputs" / name, folder / "outputs" / NODE_STATE, attempt + 1)
        self.log.warning(
            "node %d failed %d times: its %d mini-batches count as failed", index, config.run_max_try, len(batches)
        )
        return NodeResult(share, None, None, config.run_max_try, errors, batches)

    def _node_spec(self, share: tuple[int, int]) -> DriverSpec:
        """The driver's spec on a node: paths as placeholders and relative paths resolved there; failure
        limits off (applied to every node's failures together)."""
        step, config = self.step, self.step.config
        script = config.entry_script if step.folder is not None else step.script_path.name
        pool = replace(
            step.pool_settings(),
            processes=config.process_count_per_node or 0,  # 0: the node's CPU count
            error_threshold=-1,
            allowed_failed_count=None,
            allowed_failed_percent=None,
        )
        state = f"{{outputs.{NODE_STATE}}}"
        return DriverSpec(
            entry_script=f"code/{script}",
            source_directory="code" if step.folder is not None else None,
            arguments=list(step.arguments),
            dataset_type=step.dataset_type,
            inputs=[(name, f"{{inputs.{name}}}") for name in step.input_names],
            output_dir=f"{{outputs.{step.output_name}}}",
            output_action=config.output_action,
            append_row_file_name=config.append_row_file_name,
            pool=pool,
            mini_batch_size=config.batch_size_for(step.dataset_type),
            partition_keys=None if config.partition_keys is None else list(config.partition_keys),
            known_records=NODE_KNOWN,
            record_log=f"{state}/{NODE_RECORDS}",
            metrics_file=f"{state}/{NODE_METRICS}",
            share=list(share),
            capture_dir=f"{STATE_DIR}/capture" if step.captures_files else None,
            reused_log=f"{state}/{NODE_REUSED}" if step.summary_only else None,
        )

    def _code(self) -> dict[str, Path]:
        """The entry script's folder (or the lone script) under ``code/`` on the node."""
        folder = self.step.folder
        if folder is None:
            return {f"code/{self.step.script_path.name}": self.step.script_path}
        return {f"code/{rel}": folder / rel for rel in list_tree(folder, honour_ignore_files=True)}

    def _sink(self, index: int) -> LineSink:
        log = self.log

        def sink(stream: str, line: str) -> None:
            log.info("[node %d %s] %s", index, stream, line)

        return sink
