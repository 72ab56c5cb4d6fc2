"""Argument placeholders: ``{inputs.NAME}`` and ``{outputs.NAME}`` become local paths at run time.

The fingerprint sees arguments with placeholders unexpanded, so a step's fingerprint does not
depend on the temporary folders of one particular run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data.refs import DataPath, DataRef, DatasetInput, Output
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.steps.config import a_type

PLACEHOLDER = re.compile(r"\{(inputs|outputs)\.([^{}]*)\}")
# Jinja's double braces around a placeholder: Jinja would look for a variable named 'inputs'.
_JINJA_PLACEHOLDER = re.compile(r"\{\{-?\s*(inputs?|outputs?)\b\s*[.\[]\s*['\"]?([^{}\s'\"\]]*)", re.IGNORECASE)
# Anything that looks like a placeholder with a typo: '{input.x}', '{ inputs.x }', '{inputs.x' ...
_NEAR_PLACEHOLDER = re.compile(r"\{\s*(inputs?|outputs?)\s*\.\s*([^{}\s]*)\s*(\}?)", re.IGNORECASE)


def normalize(arguments: Sequence[Any] | None) -> list[str]:
    """Arguments as strings; an ``Output`` object stands for its placeholder.

    Objects whose text would reach the script instead of what they stand for (a ``DataPath``, a
    dict, ``None`` ...) are refused.
    """
    if arguments is None:
        return []
    if isinstance(arguments, (str, bytes)):
        raise ConfigurationError("arguments", "got a single string", "pass a list, such as ['--epochs', '5']")
    if isinstance(arguments, Mapping) or not isinstance(arguments, Sequence):
        raise ConfigurationError(
            "arguments", f"expected a list, got {a_type(arguments)}", "pass a list, such as ['--epochs', '5']"
        )
    normalized = []
    for index, argument in enumerate(arguments):
        if isinstance(argument, Output):
            normalized.append(argument.placeholder)
            continue
        _refuse_object(f"arguments[{index}]", argument)
        normalized.append(str(argument))
    return normalized


def _refuse_object(field: str, argument: object) -> None:
    if isinstance(argument, (DataPath, DatasetInput)) or DataRef.is_ref(argument):
        raise ConfigurationError(
            field,
            f"{argument!r} would reach the script as its text, not as a path",
            "declare it as an input, inputs={'data': ...}, and pass the placeholder '{inputs.data}'",
        )
    if argument is None or isinstance(argument, (bytes, Mapping, list, tuple, set, frozenset)):
        raise ConfigurationError(
            field,
            f"{a_type(argument)} ({argument!r:.60}) is not a command-line argument",
            "pass strings or numbers; data goes in inputs= and values the script reads in step_params=",
        )


def check(arguments: Sequence[str], input_names: Iterable[str], output_names: Iterable[str]) -> None:
    """Fail when a placeholder names no declared input or output, or is mistyped."""
    declared = {"inputs": set(input_names), "outputs": set(output_names)}
    for index, argument in enumerate(arguments):
        _check_typos(f"arguments[{index}]", argument)
        for match in PLACEHOLDER.finditer(argument):
            kind, name = match.group(1), match.group(2)
            if name not in declared[kind]:
                known = ", ".join(sorted(declared[kind])) or "none"
                raise ConfigurationError(
                    f"arguments[{index}]",
                    f"placeholder {match.group(0)!r} names no declared {kind[:-1]} (declared {kind}: {known})",
                    f"declare {kind}={{'{name}': ...}} on the step or correct the name",
                )


def _check_typos(field: str, argument: str) -> None:
    jinja = _JINJA_PLACEHOLDER.search(argument)
    if jinja:
        kind, name = _plural(jinja.group(1)), jinja.group(2) or "NAME"
        raise ConfigurationError(
            field,
            f"{argument!r} puts a placeholder in Jinja's double braces, where {kind!r} is no template variable",
            f"use single braces: '{{{kind}.{name}}}'",
        )
    for match in _NEAR_PLACEHOLDER.finditer(argument):
        kind, name, close = match.group(1), match.group(2), match.group(3)
        if kind in ("inputs", "outputs") and close and match.group(0) == f"{{{kind}.{name}}}":
            continue  # a well-formed placeholder
        correct = f"{{{_plural(kind)}.{name or 'NAME'}}}"
        raise ConfigurationError(
            field,
            f"{match.group(0)!r} in {argument!r} looks like a mistyped placeholder",
            f"write {correct!r} (no spaces, plural 'inputs'/'outputs', closing brace)",
        )


def _plural(kind: str) -> str:
    kind = kind.lower()
    return kind if kind.endswith("s") else kind + "s"


def expand(arguments: Sequence[str], inputs: Mapping[str, Path], outputs: Mapping[str, Path]) -> list[str]:
    """Replace placeholders with the run's local paths."""
    paths = {"inputs": inputs, "outputs": outputs}
    return [PLACEHOLDER.sub(lambda m: str(paths[m.group(1)][m.group(2)]), a) for a in arguments]
