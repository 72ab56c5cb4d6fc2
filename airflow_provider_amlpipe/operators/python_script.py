"""``PythonScriptStepOperator``: AML's PythonScriptStep as an Airflow operator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_amlpipe.compute.environment import PythonEnvironment
from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition
from airflow_provider_amlpipe.steps import arguments as args
from airflow_provider_amlpipe.steps.python_script import PythonScriptStep


class PythonScriptStepOperator(AmlStepOperator):
    """Run a Python script as a reusable, data-versioned step.

    :param script_name: the script, relative to ``source_directory``.
    :param source_directory: the folder holding the script and what it imports; its whole
        content (minus ``.amlignore`` / ``.gitignore`` matches) is part of the fingerprint.
    :param arguments: command-line arguments (templated); ``{inputs.NAME}`` / ``{outputs.NAME}``
        (or an ``Output`` object) become local paths when the script runs.
    :param environment: a ``PythonEnvironment`` (interpreter and/or requirements file).
    :param step_params: values the script reads with ``runtime.param`` (templated; AML's ``params``).
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
        self.source_directory = source_directory
        self.arguments = args.normalize(arguments)
        # Placeholders are literal text, untouched by Jinja, so they can be checked at parse time.
        args.check(self.arguments, self.inputs, [o.name for o in self.outputs])
        self.environment = environment or PythonEnvironment()
        if compute != "local":
            raise ConfigurationError(
                "compute", f"{compute!r} is not available for Python script steps yet", "use 'local'"
            )
        self.compute = compute

    def step_definition(self) -> StepDefinition:
        return PythonScriptStep(
            script_name=self.script_name,
            source_directory=self.source_directory,
            arguments=list(self.arguments),
            params=self.step_params,
            environment=self.environment,
        )
