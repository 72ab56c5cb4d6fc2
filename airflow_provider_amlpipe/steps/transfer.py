"""The data transfer step (AML's DataTransferStep): copy between datastores and SQL databases.

The step's work is this package's own code, run on the worker: files go from datastore to
datastore by :mod:`airflow_provider_amlpipe.transfer.files`; rows from a database to a file or
from a file into a table by :mod:`airflow_provider_amlpipe.transfer.sql`. Its one output holds
``transfer.json``: what was transferred where, each file's size and verified digest (or the row
count), so downstream steps depend on it and a changed transfer changes their fingerprints.

Fingerprint: the source's content digest (local files, through the stat cache) or version
markers (Blob ETags; ``fingerprint_mode='marker'`` anywhere), or a SQL source's change marker;
the destination's identity; the reference types. Never a secret: databases appear as
``dialect://host:port/database``, datastores by connection id.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore, ObjectStat
from airflow_provider_amlpipe.data.refs import DataPath
from airflow_provider_amlpipe.errors import ConfigurationError
from airflow_provider_amlpipe.hashing import Hasher
from airflow_provider_amlpipe.steps.inputs import resolve_inputs
from airflow_provider_amlpipe.steps.runner import StepWorkspace
from airflow_provider_amlpipe.transfer import files, sql
from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
from airflow_provider_amlpipe.transfer.journal import Journal
from airflow_provider_amlpipe.transfer.progress import TransferLog
from airflow_provider_amlpipe.transfer.refs import DEFAULT_WORKERS, FILE, SqlDataReference, check_pair, file_format

KIND = "data_transfer"
MANIFEST = "transfer.json"
SOURCE = "source_data_reference"
DESTINATION = "destination_data_reference"

StoreResolver = Callable[[str, str], Datastore]
DatabaseResolver = Callable[[str, str], sql.SqlDatabase]


@dataclass
class DataTransferStep:
    """A transfer between two ends, each a ``DataPath`` or a ``SqlDataReference`` (rendered)."""

    source: DataPath | SqlDataReference
    destination: DataPath | SqlDataReference
    source_type: str | None
    destination_type: str | None
    #: conn id, field -> datastore; conn id, field -> database (both resolved from Airflow connections).
    stores: StoreResolver
    databases: DatabaseResolver
    #: Where the resume journal lives (the step's datastore).
    journal_store: Datastore
    workers: int = DEFAULT_WORKERS
    cancel: threading.Event = field(default_factory=threading.Event)
    progress_every: float = 5.0

    def __post_init__(self) -> None:
        self._ends: dict[str, FileEnd] = {}
        self._dbs: dict[str, sql.SqlDatabase] = {}
        #: A remote source folder's objects as its fingerprint saw them: the files the transfer copies.
        self._source_listing: dict[str, ObjectStat] | None = None

    # -- ends ------------------------------------------------------------------------------------------
    def _store(self, name: str, ref: DataPath) -> Datastore:
        store = self.stores(ref.datastore, f"{name}.datastore")
        files.check_store(f"{name}.datastore", store)
        return store

    def _db(self, name: str, ref: SqlDataReference) -> sql.SqlDatabase:
        if name not in self._dbs:
            self._dbs[name] = self.databases(ref.connection, f"{name}.connection")
        return self._dbs[name]

    def close(self) -> None:
        """Close the database connections the step opened (to check, fingerprint or transfer)."""
        for db in self._dbs.values():
            db.dispose()

    def _file_ends(self) -> tuple[FileEnd, FileEnd]:
        """Both ends of a file-to-file transfer, their types decided by AML's rules (once)."""
        if not self._ends:
            assert isinstance(self.source, DataPath) and isinstance(self.destination, DataPath)
            src_store = self._store(SOURCE, self.source)
            dst_store = self._store(DESTINATION, self.destination)
            here, there = src_store.url(self.source.key), dst_store.url(self.destination.key)
            if here == there or here.startswith(there + "/") or there.startswith(here + "/"):
                raise ConfigurationError(
                    DESTINATION,
                    f"the destination {there} is the source or lies inside it (or around it), through another"
                    " connection to the same place",
                    "write to another path or datastore",
                )
            src_kind = files.source_kind(SOURCE, src_store, self.source.key, self.source_type)
            dst_kind = files.destination_kind(dst_store, self.destination.key, self.destination_type, src_kind)
            self._ends = {
                "source": FileEnd(src_store, self.source.key, src_kind),
                "destination": FileEnd(dst_store, self.destination.key, dst_kind),
            }
        return self._ends["source"], self._ends["destination"]

    # -- the step definition -----------------------------------------------------------------------------
    def validate(self, input_names: list[str], output_names: list[str]) -> None:
        for name, ref in ((SOURCE, self.source), (DESTINATION, self.destination)):
            ref.validate(name)
        check_pair(self.source, self.destination, self.source_type, self.destination_type)
        if isinstance(self.source, DataPath) and isinstance(self.destination, DataPath):
            self._file_ends()
        elif isinstance(self.source, DataPath):  # a file into a table
            assert isinstance(self.destination, SqlDataReference)
            store = self._store(SOURCE, self.source)
            if files.source_kind(SOURCE, store, self.source.key, self.source_type) != FILE:
                raise ConfigurationError(
                    f"{SOURCE}.path",
                    f"{self.source.key!r} is a directory, which cannot be imported into a SQL table",
                    "point the source at one CSV or Parquet file",
                )
            db = self._db(DESTINATION, self.destination)
            sql.table_columns(db, f"{DESTINATION}.sql_table", self.destination.text)
        else:  # rows into a file
            assert isinstance(self.source, SqlDataReference) and isinstance(self.destination, DataPath)
            self._export_store()
            db = self._db(SOURCE, self.source)
            if self.source.sql_table is not None:
                sql.table_columns(db, f"{SOURCE}.sql_table", self.source.text)

    def fingerprint_parts(self, hasher: Hasher) -> dict[str, Any]:
        return {
            "kind": KIND,
            "source": self._source_identity(hasher),
            "destination": self._identity(DESTINATION, self.destination),
            "reference_types": [self.source_type, self.destination_type],
        }

    @property
    def reusable(self) -> bool:
        """Whether the source has a change marker (a stored procedure without ``change_marker`` has none)."""
        source = self.source
        return not (
            isinstance(source, SqlDataReference)
            and source.sql_stored_procedure is not None
            and source.change_marker is None
        )

    def _identity(self, name: str, ref: DataPath | SqlDataReference) -> dict[str, Any]:
        if isinstance(ref, SqlDataReference):
            db = self._db(name, ref)
            return {"connection": ref.connection, "server": db.server, ref.kind: ref.text}
        return {"datastore": ref.datastore, "path": ref.key}

    def _source_identity(self, hasher: Hasher) -> dict[str, Any]:
        source = self.source
        identity = self._identity(SOURCE, source)
        if isinstance(source, SqlDataReference):
            identity["marker"] = sql.marker(self._db(SOURCE, source), source) if self.reusable else None
            return identity
        store = self._store(SOURCE, source)
        # A remote source is fingerprinted by its version markers: hashing it would read every byte.
        mode = source.fingerprint_mode if isinstance(store, LocalDatastore) else "marker"
        path = DataPath(source.datastore, source.path, fingerprint_mode=mode)
        resolved = resolve_inputs(
            {"source": path}, lambda conn_id: self.stores(conn_id, SOURCE), hasher, source.datastore
        )
        identity["digest"] = resolved["source"].digest
        self._source_listing = resolved["source"].listed
        return identity

    # -- running -------------------------------------------------------------------------------------------
    def execute(self, workspace: StepWorkspace, output: str, log: TransferLog) -> None:
        """Transfer, then write the output's ``transfer.json``."""
        if isinstance(self.source, DataPath) and isinstance(self.destination, DataPath):
            report = self._copy_files(log)
        elif isinstance(self.source, DataPath):
            report = self._import(workspace, log)
        else:
            report = self._export(workspace, log)
        manifest = {"source": self._describe(self.source), "destination": self._describe(self.destination), **report}
        (workspace.outputs[output] / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), "utf-8")

    def _describe(self, ref: DataPath | SqlDataReference) -> dict[str, Any]:
        return self._identity(SOURCE if ref is self.source else DESTINATION, ref)

    def _export_store(self) -> Datastore:
        """The datastore an export writes its one file to; an error if the path is a folder there."""
        assert isinstance(self.destination, DataPath)
        store = self._store(DESTINATION, self.destination)
        if files.destination_kind(store, self.destination.key, self.destination_type, FILE) != FILE:
            raise ConfigurationError(
                f"{DESTINATION}.path",
                f"{self.destination.key!r} is a folder in {store.describe()}; SQL rows are exported to one file",
                "point the destination at a file path such as 'exports/orders.csv'",
            )
        return store

    def _journal(self) -> Journal:
        src, dst = self._file_ends()
        pair = json.dumps([src.store.name, src.key, src.kind, dst.store.name, dst.key, dst.kind])
        return Journal(self.journal_store, pair)

    def _copy_files(self, log: TransferLog) -> dict[str, Any]:
        src, dst = self._file_ends()
        # The versions the fingerprint listed are the ones copied (each copy is pinned to its listed ETag), so the
        # output is what the fingerprint describes even if the source changes meanwhile; and it is listed once.
        transfer = FileTransfer(
            src,
            dst,
            self._journal(),
            log,
            workers=self.workers,
            cancel=self.cancel,
            progress_every=self.progress_every,
            listed=self._source_listing,
        )
        verified = transfer.run()
        return {
            "type": dst.kind,
            "files": [{"path": v.path, "size": v.size, "digest": v.digest} for v in verified],
        }

    def _import(self, workspace: StepWorkspace, log: TransferLog) -> dict[str, Any]:
        assert isinstance(self.source, DataPath) and isinstance(self.destination, SqlDataReference)
        fmt = file_format(f"{SOURCE}.path", self.source.key)
        store = self._store(SOURCE, self.source)
        local = store.local_path(self.source.key)
        if local is None:
            local = workspace.root / "import" / Path(self.source.key).name
            store.download_file(self.source.key, local)
        db = self._db(DESTINATION, self.destination)
        rows = sql.import_file(db, self.destination.text, local, fmt, log, self.cancel)
        log.info("import: %d rows appended to %s in one transaction", rows, self.destination.text)
        return {"type": "table", "format": fmt, "rows": rows}

    def _export(self, workspace: StepWorkspace, log: TransferLog) -> dict[str, Any]:
        assert isinstance(self.source, SqlDataReference) and isinstance(self.destination, DataPath)
        fmt = file_format(f"{DESTINATION}.path", self.destination.key)
        name = Path(self.destination.key).name
        folder = workspace.root / "export"
        folder.mkdir(parents=True, exist_ok=True)
        rows = sql.export(self._db(SOURCE, self.source), self.source, folder / name, fmt, log, self.cancel)
        log.info("export: %d rows written as %s", rows, fmt)
        staged = FileEnd(LocalDatastore("export", folder), name, FILE)
        end = FileEnd(self._export_store(), self.destination.key, FILE)
        verified = FileTransfer(staged, end, None, log, cancel=self.cancel, progress_every=self.progress_every).run()
        return {
            "type": FILE,
            "format": fmt,
            "rows": rows,
            "files": [{"path": v.path, "size": v.size, "digest": v.digest} for v in verified],
        }
