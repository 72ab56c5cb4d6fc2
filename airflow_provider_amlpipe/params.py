"""AML's DataPath pipeline parameters as Airflow Params: a data path a run can override.

AML let a published pipeline take a ``DataPath`` as a ``PipelineParameter``, set per run with
``DataPathAssignments``. Here such a parameter is a Param holding AML's shape, ``{"DataStoreName": ...,
"RelativePath": ...}`` (validated by its JSON schema before the run starts), and a step reads it through a
templated :class:`~airflow_provider_amlpipe.data.refs.DataPath`::

    with DAG(..., params={"raw_data": data_path_param("amlpipe_samples", "sample.csv")}):
        PythonScriptStepOperator(..., inputs={"raw": data_path_input("raw_data")})

A run overrides it through Airflow's REST API (``"conf": {"raw_data": {"DataStoreName": "x", "RelativePath":
"y"}}``) or AML's body through the plugin (``"DataPathAssignments": {"raw_data": {...}}``).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from airflow_provider_amlpipe.data.refs import DataPath

DATASTORE_KEY = "DataStoreName"
PATH_KEY = "RelativePath"


def data_path_param(datastore: str, path: str, description: str | None = None, **kwargs: Any) -> Param:
    """A Param whose value is a data path in AML's shape, defaulting to ``datastore`` / ``path``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            DATASTORE_KEY: {"type": "string", "minLength": 1},
            PATH_KEY: {"type": "string", "minLength": 1, "pattern": "^[^/]"},
        },
        "required": [DATASTORE_KEY, PATH_KEY],
        "additionalProperties": False,
    }
    return Param({DATASTORE_KEY: datastore, PATH_KEY: path}, description=description, **{**schema, **kwargs})


def data_path_input(param: str, **kwargs: Any) -> DataPath:
    """The :class:`DataPath` a run's value of Param ``param`` names (rendered when the task runs)."""
    return DataPath(
        datastore=f"{{{{ params[{param!r}].{DATASTORE_KEY} }}}}",
        path=f"{{{{ params[{param!r}].{PATH_KEY} }}}}",
        **kwargs,
    )


def changed_data_path_input(param: str, **kwargs: Any) -> DataPath:
    """The data a run started by a datastore change was started for, else the value of Param ``param``.

    AML's ``data_path_parameter_name``: in a run triggered by
    :func:`~airflow_provider_amlpipe.schedules.datastore_change_asset`, the changed file (or, for several, the
    watched folder) on the watched datastore; in any other run (manual, REST), the Param's data path.
    """

    def pick(event_field: str, param_field: str) -> str:
        return (
            f"{{%- set ns = namespace(v=params[{param!r}].{param_field}) -%}}"
            "{%- for events in triggering_asset_events.values() -%}{%- for e in events -%}"
            "{%- if (e.extra or {}).get('payload', {}).get('kind') == 'amlpipe_datastore_change' -%}"
            f"{{%- set ns.v = e.extra['payload'][{event_field!r}] -%}}"
            "{%- endif -%}{%- endfor -%}{%- endfor -%}{{ ns.v }}"
        )

    return DataPath(datastore=pick("datastore", DATASTORE_KEY), path=pick("path", PATH_KEY), **kwargs)
