"""``AdlaStepOperator``: AML's AdlaStep, its U-SQL run locally on DuckDB."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.operators.base import AmlStepOperator, StepDefinition
from airflow_provider_amlpipe.steps.adla import AdlaScriptStep


class AdlaStepOperator(AmlStepOperator):
    """Run a U-SQL script as a reusable, data-versioned step.

    :param script_name: the ``.usql`` file, relative to ``source_directory``.
    ``step_params`` (AML's ``params``; Airflow reserves that name) gives values for ``@@name@@``
    placeholders (templated); inputs and outputs are substituted by name too.
    :param degree_of_parallelism: accepted for AML compatibility; DuckDB uses the worker's cores.
    :param priority: accepted for AML compatibility (ADLA job priority).
    :param runtime_version: part of the fingerprint, as a different runtime could give different results.
    :param compute: ``"local"`` (DuckDB).
    """

    template_fields: Sequence[str] = (*AmlStepOperator.template_fields, "script_name")

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | None = None,
        degree_of_parallelism: int | None = None,
        priority: int = 1000,
        runtime_version: str | None = None,
        compute: str = "local",
        inputs: Mapping[str, Any] | None = None,
        outputs: Sequence[Output | str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self.script_name = script_name
        self.source_directory = source_directory
        self.degree_of_parallelism = degree_of_parallelism
        self.priority = priority
        self.runtime_version = runtime_version
        if compute != "local":
            raise ConfigurationError("compute", f"{compute!r} is not available for ADLA steps yet", "use 'local'")
        self.compute = compute

    def step_definition(self) -> StepDefinition:
        return AdlaScriptStep(
            script_name=self.script_name,
            source_directory=self.source_directory,
            params=self.step_params,
            runtime_version=self.runtime_version,
        )
