"""``ParallelRunStepOperator``: AML's ParallelRunStep as an Airflow operator."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Context

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition
from airflow_provider_amlpipe.operators.python_script import arguments_text
from airflow_provider_amlpipe.parallel.config import DATASET_TYPES, ParallelRunConfig
from airflow_provider_amlpipe.parallel.records import ItemRecords
from airflow_provider_amlpipe.parallel.results import read_record_log
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps import config as checks
from airflow_provider_amlpipe.steps.parallel_nodes import ParallelNodes
from airflow_provider_amlpipe.steps.parallel_run import ParallelRunStep
from airflow_provider_amlpipe.steps.remote_run import RemoteTarget
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepRunner, StepWorkspace


class ParallelRunStepOperator(AmlStepOperator):
    """Run an entry script's ``init()`` / ``run(mini_batch)`` over every item of its inputs, in parallel.

    Each item's result is recorded under the item's content and the step's code, arguments and side
    inputs: a rerun after new items arrive processes only those (docs/parallel-run.md).

    :param parallel_run_config: a :class:`~airflow_provider_amlpipe.parallel.config.ParallelRunConfig`.
    :param inputs: name -> a folder of files (an upstream output, a ``DataPath``, a ``DatasetInput``);
        every file is an item. With ``dataset_type="tabular"``, CSV / Parquet files whose rows are the items.
    :param output: the step's one output (``Output`` or name): ``append_row`` writes
        ``append_row_file_name`` there; a ``parallel_run_summary.json`` lists failures.
    :param side_inputs: name -> inputs every worker reads whole (a model, a style image); their content
        is part of every item's record, and ``{inputs.NAME}`` in ``arguments`` is their path.
    :param arguments: the entry script's ``sys.argv[1:]`` (templated; ``{inputs.X}`` / ``{outputs.X}``).
    :param dataset_type: ``"file"`` (``run()`` gets a list of paths) or ``"tabular"`` (a DataFrame).
    :param progress_interval: seconds between progress lines in the task log.
    See :class:`AmlStepOperator` for ``step_params``, ``datastore`` and ``allow_reuse``.
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "arguments")

    def __init__(
        self,
        *,
        parallel_run_config: ParallelRunConfig,
        inputs: Mapping[str, Any],
        output: Output | str,
        side_inputs: Mapping[str, Any] | None = None,
        arguments: Sequence[Any] | None = None,
        dataset_type: str = "file",
        progress_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        if not isinstance(parallel_run_config, ParallelRunConfig):
            raise ConfigurationError(
                "parallel_run_config",
                f"expected a ParallelRunConfig, got {parallel_run_config!r}",
                "pass ParallelRunConfig(entry_script='score.py', source_directory=..., ...)",
            )
        if dataset_type not in DATASET_TYPES:
            raise ConfigurationError(
                "dataset_type", f"{dataset_type!r} is not a dataset type", "pass 'file' or 'tabular'"
            )
        parallel_run_config.batch_size_for(dataset_type)
        items = checks.check_mapping("inputs", inputs, "{'images': upstream.output['images']}")
        if not items:
            raise ConfigurationError("inputs", "no input: a ParallelRun step needs items", "pass inputs={'name': ...}")
        side = checks.check_mapping("side_inputs", side_inputs, "{'model': train.output['model']}")
        checks.check_name_clashes(
            "side_inputs", {"inputs": items, "side_inputs": side}, "give side inputs names the inputs do not use"
        )
        if "outputs" in kwargs:
            raise ConfigurationError("outputs", "a ParallelRun step has one output", "pass output=Output('name')")
        super().__init__(inputs={**items, **side}, outputs=[output], **kwargs)
        self.parallel_run_config = parallel_run_config
        self.item_input_names = list(items)
        self.side_input_names = list(side)
        self.dataset_type = dataset_type
        self.progress_interval = checks.check_seconds("progress_interval", progress_interval, 0.1)
        self.source_directory = self._resolve_source_directory(parallel_run_config.source_directory)
        self._check_code_at_parse(self.source_directory, parallel_run_config.entry_script, "entry script")
        self.arguments = args.normalize(arguments_text(arguments))
        args.check(self.arguments, self.inputs, [o.name for o in self.outputs])

    def step_definition(self) -> ParallelRunStep:
        folder = self._dag_folder()
        config = dataclasses.replace(
            self.parallel_run_config, source_directory=self._resolve_source_directory(self.source_directory)
        )
        return ParallelRunStep(
            config=config,
            input_names=list(self.item_input_names),
            output_name=self.outputs[0].name,
            dataset_type=self.dataset_type,
            side_input_names=list(self.side_input_names),
            arguments=list(self.arguments),
            params=self.step_params,
            base_dir=None if folder is None else str(folder),
            progress_interval=self.progress_interval,
        )

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any] | None:
        assert isinstance(definition, ParallelRunStep)
        records = ItemRecords(runner.store, definition.namespace(plan.fingerprint.parts), self.log.warning)
        # Without a lease, reuse is off for this step or run (allow_reuse=False, regenerate_outputs):
        # every item is processed, and the results still recorded for later runs. With summary_only, an
        # item's result is the files its run() wrote (captured per worker), stored by content.
        reuse_items = decision.lease is not None

        def execute(workspace: StepWorkspace) -> None:
            known = records.load() if reuse_items else {}
            definition.known_records_file(workspace).write_text(json.dumps(known), encoding="utf-8")
            output = workspace.outputs[definition.output_name]
            try:
                if definition.config.remote:
                    self._run_on_nodes(context, definition, plan, workspace, runner)
                else:
                    self._execute_step(definition, workspace)
            finally:
                # What finished is recorded even when the step fails, so a rerun does not redo it.
                new = read_record_log(definition.record_log_file(workspace))
                if new and definition.summary_only:
                    count = records.save_files(new, output)
                    self.log.info("Recorded the files of %d items under %s.", count, records.prefix)
                elif new:
                    records.save(new)
                    self.log.info("Recorded %d item results under %s.", len(new), records.prefix)
            reused_log = definition.reused_log_file(workspace)
            if definition.summary_only and reused_log.exists():
                keys = json.loads(reused_log.read_text(encoding="utf-8"))
                restored = records.restore_files(keys, known, output)
                self.log.info("Restored %d files of %d items from earlier runs.", restored, len(keys))

        result = runner.run(plan, decision, self.step_params, execute, stop=self.on_kill)
        return self._push(context, result, decision.reason)

    def _run_on_nodes(
        self, context: Context, step: ParallelRunStep, plan: StepPlan, workspace: StepWorkspace, runner: StepRunner
    ) -> None:
        from airflow_provider_amlpipe.hooks.azure_batch import AzureBatchHook
        from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver

        conn_id = step.config.compute
        target = RemoteTarget(
            conn_id, lambda: AzureBatchHook(conn_id).get_remote_compute(), DatastoreResolver(), self.datastore
        )
        assert step.config.pool_id is not None
        nodes = ParallelNodes(step, target, step.config.pool_id, self.log, self.poll_interval)
        self._backend = nodes  # on_kill cancels every node's job
        # Stable across retries of this task instance: a retry reattaches to nodes still running.
        job_key = f"{self.dag_id}.{self.task_id}.{context['run_id']}.{getattr(context['ti'], 'map_index', -1)}"
        try:
            nodes.run(plan, workspace, runner.store, job_key)
        finally:
            self._backend = None
