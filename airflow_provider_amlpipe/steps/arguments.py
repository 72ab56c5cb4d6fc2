"""Argument placeholders: ``{inputs.NAME}`` and ``{outputs.NAME}`` become local paths at run time.

The fingerprint sees arguments with placeholders unexpanded, so a step's fingerprint does not
depend on the temporary folders of one particular run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data.refs import Output
from airflow_provider_amlpipe.errors import ConfigurationError

PLACEHOLDER = re.compile(r"\{(inputs|outputs)\.([^{}]*)\}")


def normalize(arguments: Sequence[Any] | None) -> list[str]:
    """Arguments as strings; an ``Output`` object stands for its placeholder."""
    if arguments is None:
        return []
    if isinstance(arguments, (str, bytes)):
        raise ConfigurationError("arguments", "got a single string", "pass a list, such as ['--epochs', '5']")
    return [a.placeholder if isinstance(a, Output) else str(a) for a in arguments]


def check(arguments: Sequence[str], input_names: Iterable[str], output_names: Iterable[str]) -> None:
    """Fail when a placeholder names no declared input or output."""
    declared = {"inputs": set(input_names), "outputs": set(output_names)}
    for index, argument in enumerate(arguments):
        for match in PLACEHOLDER.finditer(argument):
            kind, name = match.group(1), match.group(2)
            if name not in declared[kind]:
                known = ", ".join(sorted(declared[kind])) or "none"
                raise ConfigurationError(
                    f"arguments[{index}]",
                    f"placeholder {match.group(0)!r} names no declared {kind[:-1]} (declared {kind}: {known})",
                    f"declare {kind}={{'{name}': ...}} on the step or correct the name",
                )


def expand(arguments: Sequence[str], inputs: Mapping[str, Path], outputs: Mapping[str, Path]) -> list[str]:
    """Replace placeholders with the run's local paths."""
    paths = {"inputs": inputs, "outputs": outputs}
    return [PLACEHOLDER.sub(lambda m: str(paths[m.group(1)][m.group(2)]), a) for a in arguments]
