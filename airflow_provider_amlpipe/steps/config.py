"""Checks of what a user passes to a step, shared by every step kind (no Airflow, no I/O).

The operators call these in ``__init__`` (parse time) and again, where Airflow may have changed a
value by rendering templates, when the task starts and before anything is read or written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data.names import validate_name
from airflow_provider_amlpipe.data.refs import DataPath, DatasetInput, Output, is_template
from airflow_provider_amlpipe.errors import ConfigurationError

#: Step parameters are stored twice per reuse record (fingerprint parts and the step's last parts)
#: and travel in XCom; large data belongs in an input, which is hashed, not copied.
MAX_STEP_PARAMS_BYTES = 64 * 1024

#: What a parse-time check must leave alone: values Airflow resolves when the task runs (XComArgs).
Deferred = Callable[[Any], bool]


def _never(value: Any) -> bool:
    return False


def check_mapping(field: str, value: object, example: str) -> dict[str, Any]:
    """``value`` as a dict with string keys (``None`` is empty), or an error naming ``field``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            field,
            f"expected a dict of name -> value, got {a_type(value)} ({_short(value)})",
            f"pass a dict, such as {field}={example}",
        )
    for key in value:
        if not isinstance(key, str):
            raise ConfigurationError(field, f"key {key!r} is {a_type(key)}, not a string", "use string names as keys")
    return dict(value)


def check_outputs(value: object) -> list[Output]:
    """The declared outputs as ``Output`` objects: a list of ``Output`` or names, unique and valid."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, Output, Mapping)) or not isinstance(value, Sequence):
        shown = repr(value) if isinstance(value, (str, Output)) else f"{a_type(value)}"
        raise ConfigurationError(
            "outputs",
            f"expected a list of outputs, got {shown}",
            "pass a list, such as outputs=['model'] or outputs=[Output('model', register_as='my_model')]",
        )
    outputs = []
    for index, item in enumerate(value):
        if isinstance(item, Output):
            outputs.append(item)
        elif isinstance(item, str):
            outputs.append(Output(item))
        else:
            raise ConfigurationError(
                f"outputs[{index}]",
                f"expected an Output or a name, got {a_type(item)} ({_short(item)})",
                "declare outputs as names or Output('name')",
            )
    check_unique_outputs(outputs)
    return outputs


def check_unique_outputs(outputs: Sequence[Output]) -> None:
    """Every output valid, and no two sharing a name or a ``register_as`` dataset."""
    names: set[str] = set()
    registered: dict[str, int] = {}
    for index, output in enumerate(outputs):
        output.validate(f"outputs[{index}]")
        if output.name in names:
            raise ConfigurationError(
                f"outputs[{index}].name", f"two outputs are named {output.name!r}", "give every output its own name"
            )
        names.add(output.name)
        if output.register_as is not None:
            if output.register_as in registered:
                raise ConfigurationError(
                    f"outputs[{index}].register_as",
                    f"outputs[{registered[output.register_as]}] is registered as {output.register_as!r} too;"
                    " both would write versions of one dataset",
                    "give every output its own register_as name",
                )
            registered[output.register_as] = index


def dataset_names(outputs: Sequence[Output], dag_id: str, task_id: str) -> dict[str, str]:
    """Output name -> dataset name, each valid and distinct, or an error with the fix."""
    names: dict[str, str] = {}
    owners: dict[str, int] = {}
    for index, output in enumerate(outputs):
        name = output.dataset_name(dag_id, task_id)
        if output.register_as is None:
            try:
                validate_name(f"outputs[{index}]", name)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"outputs[{index}]",
                    f"the dataset name derived from dag_id.task_id.output, {name[:80]!r}"
                    f"{'...' if len(name) > 80 else ''}, is not valid ({exc.problem})",
                    f"name the dataset yourself: Output({output.name!r}, register_as='short_name')",
                ) from None
        if name in owners:
            raise ConfigurationError(
                f"outputs[{index}]",
                f"its dataset name {name!r} is also the dataset of outputs[{owners[name]}]",
                "give every output its own register_as name",
            )
        owners[name] = index
        names[output.name] = name
    return names


def check_bool(field: str, value: object) -> bool:
    """A real ``bool``: ``"no"`` or ``0`` are refused rather than read as truth values."""
    if not isinstance(value, bool):
        raise ConfigurationError(field, f"expected True or False, got {value!r}", f"pass {field}=True or False")
    return value


def check_seconds(field: str, value: object, minimum: float, why: str = "") -> float:
    """A finite number of seconds (not a bool or a string) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigurationError(
            field, f"expected a number of seconds, got {value!r}", f"pass a number, such as {field}=60"
        )
    if value < minimum:
        raise ConfigurationError(
            field,
            f"{value} seconds is below the minimum of {minimum:g}{why}",
            f"pass at least {field}={minimum:g}",
        )
    return float(value)


def check_json(field: str, value: Any, deferred: Deferred = _never) -> None:
    """Fail unless ``value`` is plain JSON: dicts with string keys, lists, strings, finite numbers,
    booleans and null. ``deferred`` values (resolved later by Airflow) are left alone."""
    if deferred(value) or value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigurationError(field, f"{value!r} is not a JSON number", "pass it as a string, such as 'inf'")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigurationError(
                    field, f"key {key!r} is {a_type(key)}; JSON keys are strings", "use string keys"
                )
            check_json(f"{field}[{key!r}]", item, deferred)
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_json(f"{field}[{index}]", item, deferred)
        return
    raise ConfigurationError(
        field,
        f"{_short(value)} (of type {type(value).__name__}) is not JSON: step parameters are recorded and fingerprinted",
        "pass strings, numbers, booleans, None, lists or dicts (convert the value, e.g. str(x) or x.isoformat())",
    )


def canonical_size(value: Any, deferred: Deferred = _never) -> int:
    """Bytes of ``value``'s canonical JSON (as fingerprinted); deferred values count as short strings."""
    text = json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=lambda v: "<deferred>" if deferred(v) else str(v),
    )
    return len(text.encode("utf-8"))


def check_step_params(value: object, deferred: Deferred = _never, field: str = "step_params") -> dict[str, Any]:
    """Step parameters: a dict of plain JSON, at most :data:`MAX_STEP_PARAMS_BYTES` encoded."""
    params = check_mapping(field, value, "{'epochs': 5}")
    check_json(field, params, deferred)
    size = canonical_size(params, deferred)
    if size > MAX_STEP_PARAMS_BYTES:
        raise ConfigurationError(
            field,
            f"{size} bytes of JSON; at most {MAX_STEP_PARAMS_BYTES} are allowed (each reuse record stores them)",
            "put large data in an input (a DataPath or an upstream output) and pass its name instead",
        )
    return params


def check_input_declarations(inputs: Mapping[str, Any], is_xcom: Deferred) -> None:
    """Parse-time check of each input's name and, where not templated, its declaration."""
    for name, value in inputs.items():
        field = f"inputs[{name!r}]"
        validate_name(field, name)
        if isinstance(value, (DataPath, DatasetInput)):
            value.validate(field, rendered=False)
        elif is_xcom(value) or isinstance(value, Mapping) or is_template(value):
            continue  # resolved when the task runs
        elif value is None:
            raise ConfigurationError(
                field, "the input is None", "pass a DataPath, DatasetInput or an upstream step's output"
            )
        elif isinstance(value, str):
            raise ConfigurationError(
                field,
                f"{value!r} is a plain string, not an input",
                f"wrap it: DataPath(datastore='<conn id>', path={value!r}), or DatasetInput({value!r})",
            )
        else:
            raise ConfigurationError(
                field,
                f"unsupported input {_short(value)} of type {type(value).__name__}",
                "pass a DataPath, DatasetInput or an upstream step's output (upstream.output['name'])",
            )


def check_name_clashes(field: str, groups: Mapping[str, Iterable[str]], fix: str) -> None:
    """Fail when one name appears in two of ``groups`` (e.g. a parameter also named as an input)."""
    seen: dict[str, str] = {}
    for group, names in groups.items():
        for name in names:
            if name in seen and seen[name] != group:
                raise ConfigurationError(field, f"{name!r} is both {seen[name]} and {group}", fix)
            seen.setdefault(name, group)


def resolve_path(path: str, base_dir: str | None) -> Path:
    """``path`` made absolute: relative to ``base_dir`` (a DAG file's folder) when given, else to
    the current directory."""
    candidate = Path(path).expanduser()
    if not candidate.is_absolute() and base_dir is not None:
        candidate = Path(base_dir) / candidate
    return candidate.resolve()


def source_folder(source_directory: str | None, base_dir: str | None) -> Path | None:
    """A step's ``source_directory`` resolved against the DAG file's folder, ``None`` without one."""
    return resolve_path(source_directory, base_dir) if source_directory else None


def check_source_folder(source_directory: str | None, folder: Path | None, holds: str) -> None:
    """Refuse a ``source_directory`` that is not a folder; ``holds`` says what it should hold."""
    if folder is None or folder.is_dir():
        return
    where = "" if str(folder) == source_directory else f" ({str(folder)!r})"
    raise ConfigurationError(
        "source_directory",
        f"{source_directory!r}{where} is not a folder",
        f"point it at the folder holding {holds} (a relative path is relative to the DAG file's folder)",
    )


def a_type(value: object) -> str:
    """``value``'s type with its article, for messages: "a list", "an int"."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
