"""``PythonScriptStepOperator``: AML's PythonScriptStep as an Airflow operator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.links import STATUS_XCOM_KEY
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition, resolved_later
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep


class PythonScriptStepOperator(AmlStepOperator):
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
    See :class:`AmlStepOperator` for ``inputs``, ``outputs``, ``datastore`` and ``allow_reuse``.
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "arguments", "script_name")

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | None = None,
        arguments: Sequence[Any] | None = None,
        environment: PythonEnvironment | None = None,
        compute: str = "local",
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.script_name = script_name
        self.source_directory = self._resolve_source_directory(source_directory)
        self._check_code_at_parse(self.source_directory, script_name, "script")
        self.arguments = args.normalize(_arguments_text(arguments))
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
        if compute != "local":
            raise ConfigurationError(
                "compute", f"{compute!r} is not available for Python script steps yet", "use 'local'"
            )
        self.compute = compute

    def step_definition(self) -> StepDefinition:
        folder = self._dag_folder()
        return PythonScriptStep(
            script_name=self.script_name,
            source_directory=self._resolve_source_directory(self.source_directory),
            arguments=list(self.arguments),
            params=self.step_params,
            environment=self.environment,
            base_dir=None if folder is None else str(folder),
        )


def _arguments_text(arguments: Sequence[Any] | None) -> Sequence[Any] | None:
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
