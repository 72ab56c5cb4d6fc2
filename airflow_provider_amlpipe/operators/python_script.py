"""``PythonScriptStepOperator``: AML's PythonScriptStep as an Airflow operator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Context

from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.compute.remote import RemoteCompute
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, resolved_later
from airflow_provider_amlpipe.operators.remote import LOCAL, RemoteStepOperator
from airflow_provider_amlpipe.shell.links import STATUS_XCOM_KEY
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep, VmTarget


class PythonScriptStepOperator(RemoteStepOperator):
    """Run a Python script as a reusable, data-versioned step.

    :param script_name: the script, relative to ``source_directory`` (without one: relative to the
        folder of the DAG file).
    :param source_directory: the folder holding the script and what it imports; its whole
        content (minus ``.amlignore`` / ``.gitignore`` matches) is part of the fingerprint. A
        relative path is relative to the folder of the file that defines the DAG (``dag.folder``),
        never to the worker's current directory.
    :param arguments: command-line arguments (templated); ``{inputs.NAME}`` / ``{outputs.NAME}``
        (or an ``Output`` object) become local paths when the script runs.
    :param environment: a ``PythonEnvironment`` (interpreter and/or requirements file).
    :param step_params: values the script reads with ``runtime.param`` (templated; AML's ``params``;
        Airflow's ``params`` are template variables and do not reach the script by themselves).
    :param compute: ``"local"`` (this worker, the default) or an ``amlpipe_azure_vm`` connection id:
        the script then runs on the existing Linux VM ``vm_name`` through Run Command, its code,
        inputs and outputs staged through the connection's Blob ``staging_datastore`` (docs/azure-vm.md).
    :param vm_name: the VM (required with an Azure VM connection); ``resource_group``: its resource
        group (default: the connection's). Neither is part of the fingerprint.
    :param deferrable: with a VM, wait in the triggerer (default Airflow's ``[operators] default_deferrable``).
    See :class:`AmlStepOperator` for ``inputs``, ``outputs``, ``datastore`` and ``allow_reuse``.
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "arguments", "script_name")
    remote_kind = "Azure VM"

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | None = None,
        arguments: Sequence[Any] | None = None,
        environment: PythonEnvironment | None = None,
        compute: str = LOCAL,
        vm_name: str | None = None,
        resource_group: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(compute=compute, inputs=inputs, outputs=outputs, **kwargs)
        self.script_name = script_name
        self.source_directory = self._resolve_source_directory(source_directory)
        self._check_code_at_parse(self.source_directory, script_name, "script")
        self.arguments = args.normalize(arguments_text(arguments))
        # Placeholders are literal text, untouched by Jinja, so they can be checked at parse time.
        args.check(self.arguments, self.inputs, [o.name for o in self.outputs])
        if environment is not None and not isinstance(environment, PythonEnvironment):
            raise ConfigurationError(
                "environment",
                f"expected a PythonEnvironment, got {environment!r}",
                "pass PythonEnvironment(interpreter=..., requirements=...)",
            )
        self.environment = environment or PythonEnvironment()
        folder = None if self.source_directory is None else Path(self.source_directory)
        # A folder still relative (no DAG yet) is not looked at: it is not relative to this cwd.
        self.environment.validate(folder if folder is not None and folder.is_absolute() else None)
        self.vm_name = _optional_name("vm_name", vm_name)
        self.resource_group = _optional_name("resource_group", resource_group)
        if self.remote and self.vm_name is None:
            raise ConfigurationError(
                "compute",
                f"{compute!r} would run the script on an Azure VM (an amlpipe_azure_vm connection), but vm_name"
                " names no VM",
                "pass vm_name='<VM>' (and resource_group= unless the connection has one), or use 'local'",
            )
        if self.remote and self.environment.requirements is not None:
            raise ConfigurationError(
                "environment.requirements",
                "a requirements venv is built on this worker only, not on a VM",
                "install the packages on the VM (they are then used by its interpreter), or use compute='local'",
            )
        self._resuming = False

    def step_definition(self) -> PythonScriptStep:
        folder = self._dag_folder()
        vm = None
        if self.remote and self.vm_name is not None:
            timeout = self.execution_timeout.total_seconds() if self.execution_timeout else None
            vm = VmTarget(self.vm_name, self.resource_group, timeout)
        return PythonScriptStep(
            script_name=self.script_name,
            source_directory=self._resolve_source_directory(self.source_directory),
            arguments=list(self.arguments),
            params=self.step_params,
            environment=self.environment,
            base_dir=None if folder is None else str(folder),
            vm=vm,
            step_id=f"{self.dag_id}.{self.task_id}",
        )

    def remote_compute(self) -> RemoteCompute:
        from airflow_provider_amlpipe.hooks.azure_vm import AzureVmHook

        # Looked up first (before anything is staged), except to collect a job that already ran.
        vm_name = None if self._resuming else self.vm_name
        return AzureVmHook(self.compute).get_remote_compute(vm_name, self.resource_group)

    def execute_job_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        self._resuming = True
        return super().execute_job_complete(context, event)


def _optional_name(field: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(field, f"expected a name, got {value!r}", f"pass {field}='<name>' or leave it out")
    return value


def arguments_text(arguments: Sequence[Any] | None) -> Sequence[Any] | None:
    """Arguments with each XComArg turned into the template that pulls it (as Airflow documents).

    An upstream *step's* output is data, not text: it must be an input, or the script would get
    the DataRef's JSON instead of a path.
    """
    if arguments is None or isinstance(arguments, (str, bytes)) or not isinstance(arguments, Sequence):
        return arguments
    texts: list[Any] = []
    for index, argument in enumerate(arguments):
        if resolved_later(argument):
            operator = getattr(argument, "operator", None)
            key = getattr(argument, "key", None)
            if isinstance(operator, AmlStepOperator) and key != STATUS_XCOM_KEY:
                raise ConfigurationError(
                    f"arguments[{index}]",
                    f"an output of step {operator.task_id!r} would reach the script as JSON text, not as a path",
                    f"declare it as an input, inputs={{'{key if key != 'return_value' else 'data'}': ...}},"
                    " and pass the placeholder '{inputs.<that name>}'",
                )
            texts.append(str(argument))
        else:
            texts.append(argument)
    return texts
