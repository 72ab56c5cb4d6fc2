"""Reuse for tasks that are not step operators: what defines them, declared by the user."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher, sha256_json, tree_digest

KIND = "guarded_task"


def code_identity(item: object, field_name: str) -> str:
    """A stable text for one ``code`` item: a callable's source, or a path to hash later."""
    if callable(item):
        target: Callable[..., Any] = getattr(item, "function", None) or getattr(item, "python_callable", None) or item
        try:
            return "source:" + inspect.getsource(target)
        except (OSError, TypeError) as exc:
            raise ConfigurationError(
                field_name, f"cannot read the source of {item!r}", "pass a function defined in a file, or a path"
            ) from exc
    if isinstance(item, (str, Path)):
        return f"path:{item}"
    raise ConfigurationError(field_name, f"unsupported code item {item!r}", "pass functions, files or folders")


@dataclass
class GuardedTask:
    """The declared identity of a guarded task: its code (sources and paths) and parameters."""

    code: Sequence[str]
    params: dict[str, Any] = field(default_factory=dict)

    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        for index, item in enumerate(self.code):
            if item.startswith("path:") and not Path(item[5:]).exists():
                raise ConfigurationError(
                    f"code[{index}]", f"{item[5:]!r} does not exist", "point it at a file or folder"
                )

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        digests = []
        for item in self.code:
            if item.startswith("source:"):
                digests.append(hashlib.sha256(item.encode("utf-8")).hexdigest())
                continue
            path = Path(item[5:]).resolve()
            if path.is_dir():
                digests.append(tree_digest(hasher.hash_tree(path, honour_ignore_files=True)))
            else:
                digests.append(tree_digest(hasher.hash_files(path.parent, [path.name])))
        return {"kind": KIND, "code": sha256_json(digests), "params": self.params}
