"""``DataTransferStepOperator``: AML's DataTransferStep as an Airflow operator."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import Context

from airflow_provider_amlpipe.data.refs import DataPath, Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hooks.datastore import DatastoreResolver
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition
from airflow_provider_amlpipe.steps.runner import Run, StepPlan, StepRunner
from airflow_provider_amlpipe.transfer.refs import (
    DEFAULT_WORKERS,
    SqlDataReference,
    check_end,
    check_pair,
    check_reference_type,
)

if TYPE_CHECKING:
    from airflow_provider_amlpipe.steps.transfer import DataTransferStep

DEFAULT_OUTPUT = "output"


class DataTransferStepOperator(AmlStepOperator):
    """Copy data between datastores and SQL databases as a reusable, versioned step.

    :param source_data_reference: a ``DataPath`` (file or folder in a local, Azure Blob or ADLS Gen2
        datastore) or a ``SqlDataReference`` (table, query or stored procedure on PostgreSQL, MySQL /
        MariaDB or SQL Server / Azure SQL).
    :param destination_data_reference: a ``DataPath``, or a ``SqlDataReference`` with ``sql_table``
        (an existing table; rows are appended in one transaction).
    :param source_reference_type: ``'file'`` or ``'directory'``; by default the type of the existing path.
    :param destination_reference_type: ``'file'`` or ``'directory'``; by default the type of the
        existing path, else the source's.
    :param output_name: the step's one output (AML's ``get_output()``): ``transfer.json`` describing
        what was copied where, with each file's verified digest or the row count; take it as an input
        downstream (``step.output``) to run after the transfer and rerun when it changed.
    :param register_as: the dataset name of that output (default ``<dag_id>.<task_id>.<output_name>``).
    :param workers: files copied at once.
    :param progress_every: seconds between progress lines in the task log.
    :param name: AML's step name; used as ``task_id`` when none is given.

    An unchanged source (same content digest, ETags or SQL change marker) is reused: nothing is
    read or copied. See :class:`AmlStepOperator` for ``datastore`` and ``allow_reuse``, and
    docs/data-transfer.md.
    """

    template_fields: Sequence[str] = (
        *AmlStepOperator.template_fields,
        "source_data_reference",
        "destination_data_reference",
    )
    ui_color = "#e3f2d5"

    def __init__(
        self,
        *,
        source_data_reference: DataPath | SqlDataReference,
        destination_data_reference: DataPath | SqlDataReference,
        source_reference_type: str | None = None,
        destination_reference_type: str | None = None,
        output_name: str = DEFAULT_OUTPUT,
        register_as: str | None = None,
        workers: int = DEFAULT_WORKERS,
        progress_every: float = 5.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if name is not None and "task_id" not in kwargs:
            kwargs["task_id"] = name
        for arg in ("inputs", "outputs"):
            if kwargs.get(arg):
                raise ConfigurationError(
                    arg, f"a transfer step takes no {arg}", "use source_data_reference / destination_data_reference"
                )
            kwargs.pop(arg, None)
        super().__init__(outputs=[Output(output_name, register_as=register_as)], **kwargs)
        self.source_data_reference = check_end("source_data_reference", source_data_reference)
        self.destination_data_reference = check_end("destination_data_reference", destination_data_reference)
        self.source_reference_type = check_reference_type("source_reference_type", source_reference_type)
        self.destination_reference_type = check_reference_type("destination_reference_type", destination_reference_type)
        check_pair(
            self.source_data_reference,
            self.destination_data_reference,
            self.source_reference_type,
            self.destination_reference_type,
        )
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigurationError(
                "workers", f"expected a number of files copied at once, got {workers!r}", "pass workers=8"
            )
        self.workers = workers
        self.progress_every = progress_every
        self.output_name = output_name
        self._cancel = threading.Event()
        self._step: DataTransferStep | None = None

    def step_definition(self) -> StepDefinition:
        resolver = DatastoreResolver()
        # the transfer engines load the Azure SDKs and pyarrow (0.6 s): only a task that transfers needs them,
        # not every parse of the DAG file
        from airflow_provider_amlpipe.hooks.sql_database import sql_database
        from airflow_provider_amlpipe.steps.transfer import DataTransferStep

        self._step = DataTransferStep(
            source=self.source_data_reference,
            destination=self.destination_data_reference,
            source_type=self.source_reference_type,
            destination_type=self.destination_reference_type,
            stores=resolver,
            databases=sql_database,
            journal_store=resolver(self.datastore),
            workers=self.workers,
            cancel=self._cancel,
            progress_every=self.progress_every,
        )
        if not self._step.reusable and self.allow_reuse:
            self.log.info(
                "Reuse is off for this run: a stored procedure has no change marker (pass"
                " SqlDataReference(..., change_marker='SELECT ...') to reuse unchanged results)."
            )
            self.allow_reuse = False
        # The transfer runs in this worker (run_step), never as a command: the base needs no invocation.
        return cast(StepDefinition, self._step)

    def execute(self, context: Context) -> dict[str, Any] | None:
        try:
            return super().execute(context)
        finally:
            self._close()

    def execute_resume(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any] | None:
        try:
            return super().execute_resume(context, event)
        finally:
            self._close()

    def _close(self) -> None:
        if self._step is not None:
            self._step.close()

    def run_step(
        self, context: Context, runner: StepRunner, plan: StepPlan, decision: Run, definition: StepDefinition
    ) -> dict[str, Any] | None:
        step = self._step
        assert step is not None
        result = runner.run(
            plan, decision, self.step_params, lambda ws: step.execute(ws, self.output_name, self.log), stop=self.on_kill
        )
        return self._push(context, result, decision.reason)

    def on_kill(self) -> None:
        self._cancel.set()
