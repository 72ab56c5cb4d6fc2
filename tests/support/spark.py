"""The Spark tests' shared SparkSession handle (the ``spark_rig`` fixture in ``tests/conftest.py``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class SparkRig:
    """The test session's SparkSession; ``cwd`` is the JVM's working directory, where relative paths resolve."""

    session: Any
    cwd: Path

    def reset(self) -> None:
        """An empty working directory and catalog (only ``default``, without tables), so tests cannot interfere."""
        for child in self.cwd.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        self.session.sql("USE default")
        for db in self.session.catalog.listDatabases():
            if db.name != "default":
                self.session.sql(f"DROP DATABASE `{db.name}` CASCADE")
        for table in self.session.catalog.listTables("default"):
            if not table.isTemporary:
                self.session.sql(f"DROP TABLE `default`.`{table.name}`")
