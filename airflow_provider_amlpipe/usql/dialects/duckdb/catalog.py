"""The DuckDB emitter's catalog statements: databases, schemas, tables (CREATE, DROP, INSERT, TRUNCATE),
partitions, and the CREATE/DROP of views, functions and procedures."""

from __future__ import annotations

from collections.abc import Callable

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import (
    DBO,
    MASTER,
    META,
    META_DDL,
    Catalog,
    CatalogError,
    CatalogObject,
    Database,
)
from airflow_provider_amlpipe.usql.dialects.duckdb.exprs import Scope, lit, q
from airflow_provider_amlpipe.usql.emit_model import EmittedStatement, QualifiedName
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType


def _meta_key(nm: QualifiedName, name_column: str, prefix: str = "") -> str:
    """The SQL condition selecting ``nm``'s rows in a ``usql_meta`` table."""
    return f"{prefix}schema_name = {lit(nm.schema)} AND {prefix}{name_column} = {lit(nm.name)}"


def _sql_text(text: str) -> str:
    """``text`` inside a SQL string literal."""
    return text.replace("'", "''")


class CatalogStatements:
    """Catalog statements of :class:`~.emitter.DuckDbEmitter` (a mixin of it)."""

    source: str
    out: list[EmittedStatement]
    err: Callable[[n.Pos, str, str], UsqlError]
    _column_types: Callable[[tuple[tuple[str, n.TypeRef, n.Pos], ...], str], list[tuple[str, UType]]]
    drop_database_checked: Callable[[n.DropDatabase, bool, str], bool]
    _note: Callable[[n.Pos, str], None]
    catalog: Catalog
    attached: set[str]
    current_db: str
    current_schema: str
    call_depth: int
    x: Translator
    query: Callable[[n.Query], tuple[str, list[tuple[str, UType]]]]

    def _db(self, name: str, pos: n.Pos) -> Database | None:
        if not Catalog.valid_name(name):
            raise self.err(pos, "DATABASE", f"{name!r} is not a database name this catalog can store")
        try:
            return self.catalog.get(name)
        except CatalogError as e:
            raise self.err(pos, "catalog", str(e)) from None

    def _attach(self, db: str, pos: n.Pos) -> str:
        alias = self.catalog.alias(db)
        if db not in self.attached:
            self.attached.add(db)
            sql = f"ATTACH IF NOT EXISTS {lit(str(self.catalog.file(db)))} AS {q(alias)};"
            self.out.append(EmittedStatement("catalog", sql, pos.line, pos.column, ensure_dir=self.catalog.directory))
        return q(alias)

    def use_database(self, st: n.UseDatabase) -> None:
        if self._db(st.database, st.pos) is None:
            raise self.err(st.pos, "USE DATABASE", f"database {st.database!r} does not exist (CREATE DATABASE it)")
        self.current_db = st.database
        self.current_schema = DBO  # USE DATABASE also sets the schema context to the database's dbo
        self._note(st.pos, f"USE DATABASE {st.database}")

    def create_database(self, st: n.CreateDatabase) -> None:
        if self._db(st.name, st.pos) is not None:
            if st.if_not_exists:
                self._note(st.pos, f"database {st.name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.pos, "CREATE DATABASE", f"database {st.name!r} already exists")
        self.catalog.create(st.name)
        self._attach(st.name, st.pos)

    def drop_database(self, st: n.DropDatabase) -> None:
        if st.name == MASTER:
            raise self.err(st.pos, "DROP DATABASE", "the master database cannot be dropped")
        if not self.drop_database_checked(st, self._db(st.name, st.pos) is not None, self.current_db):
            return
        self.catalog.drop(st.name)
        self.attached.discard(st.name)
        sql = f"DETACH DATABASE IF EXISTS {q(self.catalog.alias(st.name))};"
        self.out.append(
            EmittedStatement("catalog", sql, st.pos.line, st.pos.column, drop_file=self.catalog.file(st.name))
        )

    # ------------------------------------------------------------ catalog: names and schemas
    def _resolve(self, tn: n.TableName, what: str = "table") -> tuple[QualifiedName, Database]:
        """The full name of ``[db.][schema.]name`` (the current database and schema fill the gaps)."""
        db_name = tn.database or self.current_db
        schema = tn.schema or (self.current_schema if tn.database is None else DBO)
        db = self._db(db_name, tn.pos)
        if db is None:
            raise self.err(tn.pos, what, f"database {db_name!r} of {what} {tn} does not exist")
        if schema not in db.schemas:
            raise self.err(tn.pos, "schema", f"schema {schema!r} does not exist in database {db_name!r}")
        return QualifiedName(db_name, schema, tn.name), db

    def _table(self, tn: n.TableName, must_exist: bool = True) -> tuple[QualifiedName, list[tuple[str, UType]] | None]:
        """The full name and the columns (None if it does not exist) of a table."""
        nm, db = self._resolve(tn)
        cols = db.tables.get(nm.key)
        if cols is None and must_exist:
            kind = db.kind_of(*nm.key)
            if kind is not None:
                raise self.err(tn.pos, "table", f"{nm} is a {kind.lower()}, not a table")
            known = ", ".join(sorted(name for schema, name in db.tables if schema == nm.schema)) or "none"
            raise self.err(tn.pos, "table", f"unknown table {nm} (tables in {nm.db}.{nm.schema}: {known})")
        return nm, cols

    def _table_sql(self, nm: QualifiedName, pos: n.Pos) -> str:
        return f"{self._attach(nm.db, pos)}.{q(Catalog.schema_sql(nm.schema))}.{q(nm.name)}"

    def _meta(self, db: str, pos: n.Pos) -> str:
        """The attached database holding ``usql_meta``, after creating its tables if they are missing."""
        alias = self._attach(db, pos)
        self.out.append(EmittedStatement("catalog", META_DDL.format(db=alias), pos.line, pos.column))
        return alias

    def use_schema(self, st: n.UseSchema) -> None:
        db = self._db(self.current_db, st.pos)
        if db is None or st.name not in db.schemas:
            raise self.err(st.pos, "USE SCHEMA", f"schema {st.name!r} does not exist in database "
                           f"{self.current_db!r} (CREATE SCHEMA it)")  # fmt: skip
        self.current_schema = st.name
        self._note(st.pos, f"USE SCHEMA {st.name}")

    def create_schema(self, st: n.CreateSchema) -> None:
        db = self._db(self.current_db, st.pos)
        assert db is not None
        if st.name in db.schemas:
            if st.if_not_exists:
                self._note(st.pos, f"schema {st.name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.pos, "CREATE SCHEMA", f"schema {st.name!r} already exists in {self.current_db!r}")
        if st.name in (META, "main") or not Catalog.valid_name(st.name.replace(" ", "_")):
            raise self.err(st.pos, "CREATE SCHEMA", f"{st.name!r} is not a schema name this catalog can store")
        db.schemas.add(st.name)
        sql = f"CREATE SCHEMA {self._attach(self.current_db, st.pos)}.{q(st.name)};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    def _drop_schema(self, st: n.DropObject) -> None:
        db = self._db(self.current_db, st.pos)
        assert db is not None
        schema = st.name.name
        if schema == DBO:
            raise self.err(st.pos, "DROP SCHEMA", "the dbo schema cannot be dropped")
        if schema not in db.schemas:
            if st.if_exists:
                self._note(st.pos, f"schema {schema} does not exist (IF EXISTS)")
                return
            raise self.err(st.pos, "DROP SCHEMA", f"schema {schema!r} does not exist in {self.current_db!r}")
        if any(s == schema for s, _ in [*db.tables, *db.objects]):
            raise self.err(st.pos, "DROP SCHEMA", f"schema {schema!r} is not empty (drop its objects first)")
        if schema == self.current_schema:
            self.current_schema = DBO
        db.schemas.discard(schema)
        sql = f"DROP SCHEMA {self._attach(self.current_db, st.pos)}.{q(schema)};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    # ------------------------------------------------------------ catalog: tables
    def create_table(self, st: n.CreateTable) -> None:
        nm, db = self._resolve(st.table)
        kind = db.kind_of(*nm.key)
        if kind is not None:
            if st.if_not_exists and kind == "TABLE":
                self._note(st.pos, f"table {nm} exists (IF NOT EXISTS)")
                return
            raise self.err(st.table.pos, "CREATE TABLE", f"{kind.lower()} {nm} already exists")
        if not Catalog.valid_name(nm.name) or "." in nm.name:
            raise self.err(st.table.pos, "CREATE TABLE", f"{nm.name!r} is not a table name this catalog can store")
        for note in st.notes:
            self._note(st.pos, f"{note} has no effect locally (accepted and ignored)")
        if st.query is not None:
            if st.partitioned_by:
                raise self.err(st.pos, "CREATE TABLE", "CREATE TABLE ... AS cannot create a partitioned table")
            sql, cols = self.query(st.query)
        else:
            sql = ""
            cols = self._column_types(st.columns, "CREATE TABLE")
        for cname, ty in cols:
            if ty.name in ("unknown", "null"):
                raise self.err(st.pos, "CREATE TABLE", f"column {cname!r} has no storable type ({ty})")
        types = dict(cols)
        for pc in st.partitioned_by:
            if pc not in types or types[pc].name in ("SqlArray", "SqlMap"):
                raise self.err(st.pos, "CREATE TABLE", f"PARTITIONED BY column {pc!r} is not a column of a simple type")
        target = self._table_sql(nm, st.table.pos)
        defs = ", ".join(f"{q(c)} {self.x.column_type_sql(ty)}{'' if ty.nullable else ' NOT NULL'}" for c, ty in cols)
        stmts = [f"CREATE TABLE {target} ({defs});"]
        stmts += [f"COMMENT ON COLUMN {target}.{q(c)} IS {lit(str(ty))};" for c, ty in cols]
        if st.partitioned_by:
            comment = "PARTITIONED BY (" + ",".join(st.partitioned_by) + ")"
            stmts.append(f"COMMENT ON TABLE {target} IS {lit(comment)};")
            db.partitioned[nm.key] = st.partitioned_by
        if sql:
            stmts.append(f"INSERT INTO {target}\n{sql};")
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))
        db.tables[nm.key] = list(cols)

    def drop_table(self, st: n.DropTable) -> None:
        nm, existing = self._table(st.table, must_exist=not st.if_exists)
        if existing is None:
            self._note(st.pos, f"table {nm} does not exist (IF EXISTS)")
            return
        db = self.catalog.get(nm.db)
        assert db is not None
        sql = f"DROP TABLE {self._table_sql(nm, st.table.pos)};"
        if db.partitioned.pop(nm.key, None) is not None:
            meta = self._meta(nm.db, st.pos)
            sql += f"\nDELETE FROM {meta}.{META}.partitions WHERE {_meta_key(nm, 'table_name')};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))
        del db.tables[nm.key]

    def insert(self, st: n.Insert) -> None:
        nm, existing = self._table(st.table)
        assert existing is not None
        db = self.catalog.get(nm.db)
        assert db is not None
        partition_cols = db.partitioned.get(nm.key, ())
        self._check_partition_clause(st, nm, partition_cols)
        types = dict(existing)
        labelled = partition_cols if st.partition is not None else ()
        targets = list(st.columns) if st.columns else [c for c, _ in existing if c not in labelled]
        for c in targets:
            if c not in types:
                raise self.err(st.table.pos, "INSERT", f"table {nm} has no column {c!r}")
            if targets.count(c) > 1:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} is listed twice")
            if c in labelled:
                raise self.err(st.table.pos, "INSERT", f"partition column {c!r} takes its value from PARTITION (...)")
        for c, ty in existing:
            if c not in targets and c not in labelled and not ty.nullable:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} ({ty}) is not nullable and needs a value")
        sql, cols = self.query(st.query)
        if len(cols) != len(targets):
            raise self.err(st.pos, "INSERT", f"the query yields {len(cols)} column(s) but {len(targets)} are inserted "
                           f"into {nm} ({', '.join(targets)})")  # fmt: skip
        exprs = []
        for (src, sty), dst in zip(cols, targets, strict=True):
            dty = types[dst]
            if not t.assignable(sty, dty):
                raise self.err(st.pos, "INSERT", f"column {src!r} is {sty} but {nm.name}.{dst} is {dty}")
            exprs.append(self.x.converted_column(q(src), sty, dty))
        select = ", ".join(f"{x} AS {q(c)}" for x, c in zip(exprs, targets, strict=True))
        body = f"SELECT {select} FROM (\n{sql}\n) AS usql_insert"
        target = self._table_sql(nm, st.table.pos)
        stmts: list[str] = []
        if partition_cols:
            body = self._partitioned_rows(st, nm, partition_cols, types, targets, body, stmts)
            targets = [*targets, *labelled] if st.partition is not None else targets
        col_list = ", ".join(q(c) for c in targets)
        stmts.append(f"INSERT INTO {target} ({col_list})\n{body};")
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    # ------------------------------------------------------------ catalog: partitions
    def _check_partition_clause(self, st: n.Insert, nm: QualifiedName, partition_cols: tuple[str, ...]) -> None:
        if partition_cols and st.partition is None and st.on_violation is None:
            raise self.err(st.pos, "INSERT", f"{nm} is partitioned: INSERT needs PARTITION (...) or ON INTEGRITY "
                           "VIOLATION IGNORE | MOVE TO PARTITION (...)")  # fmt: skip
        if not partition_cols and (st.partition is not None or st.on_violation is not None):
            raise self.err(st.pos, "INSERT", f"{nm} is not a partitioned table (PARTITIONED BY (...))")

    def _label(
        self, values: tuple[n.Expr, ...], nm: QualifiedName, cols: tuple[str, ...], types: dict[str, UType]
    ) -> list[str]:
        """The SQL values of a ``PARTITION (v, ...)`` label, typed as the partition columns."""
        if len(values) != len(cols):
            raise self.err(values[0].pos, "PARTITION", f"{nm} is partitioned by ({', '.join(cols)}): "
                           f"PARTITION (...) needs {len(cols)} value(s)")  # fmt: skip
        out = []
        for e, c in zip(values, cols, strict=True):
            sql, ty = self.x.tr(e, Scope())
            dty = types[c]
            fits = t.assignable(ty, dty.with_nullable(True)) or (ty.is_numeric and dty.is_numeric)
            if ty.name != "null" and not fits:
                raise self.err(e.pos, "PARTITION", f"the partition value is {ty} but column {c!r} is {dty}")
            out.append(f"CAST({sql} AS {dty.duckdb()})")
        return out

    @staticmethod
    def _label_text(values: list[str]) -> str:
        """The stored form of a partition label: its values as text (comparable, whatever their types)."""
        return "[" + ", ".join(f"CAST({v} AS VARCHAR)" for v in values) + "]"

    def _partition_exists(self, meta: str, nm: QualifiedName, label: str) -> str:
        key = _meta_key(nm, "table_name", "usql_p.")
        return (f"EXISTS (SELECT 1 FROM {meta}.{META}.partitions AS usql_p WHERE {key} "
                f"AND usql_p.label IS NOT DISTINCT FROM {label})")  # fmt: skip

    def _require_partition(self, meta: str, nm: QualifiedName, label: str, present: bool) -> str:
        """A statement failing at run time unless the partition exists (``present``) / does not exist."""
        cond = ("NOT " if present else "") + self._partition_exists(meta, nm, label)
        what = "does not exist (ALTER TABLE ... ADD PARTITION it first)" if present else "already exists"
        msg = f"'partition ' || CAST({label} AS VARCHAR) || ' of {_sql_text(str(nm))} {what}'"
        return f"SELECT CASE WHEN {cond} THEN error({msg}) END;"

    def _partitioned_rows(
        self,
        st: n.Insert,
        nm: QualifiedName,
        cols: tuple[str, ...],
        types: dict[str, UType],
        targets: list[str],
        body: str,
        stmts: list[str],
    ) -> str:
        """The rows an INSERT adds to a partitioned table, after the partition checks in ``stmts``."""
        meta = self._meta(nm.db, st.pos)
        if st.partition is not None:
            values = self._label(st.partition, nm, cols, types)
            stmts.append(self._require_partition(meta, nm, self._label_text(values), present=True))
            return f"SELECT *, {', '.join(f'{v} AS {q(c)}' for v, c in zip(values, cols, strict=True))} FROM ({body})"
        missing = [c for c in cols if c not in targets]
        if missing:
            raise self.err(st.pos, "INSERT", f"ON INTEGRITY VIOLATION needs the partition column(s) "
                           f"{', '.join(missing)} in the inserted columns")  # fmt: skip
        row_label = self._label_text([f"usql_rows.{q(c)}" for c in cols])
        fits = self._partition_exists(meta, nm, row_label)
        if st.on_violation == "IGNORE":
            return f"SELECT * FROM ({body}) AS usql_rows WHERE {fits}"
        assert st.move_to is not None
        values = self._label(st.move_to, nm, cols, types)
        stmts.append(self._require_partition(meta, nm, self._label_text(values), present=True))
        moved = dict(zip(cols, values, strict=True))
        select = ", ".join(
            f"CASE WHEN {fits} THEN usql_rows.{q(c)} ELSE {moved[c]} END AS {q(c)}"
            if c in moved
            else f"usql_rows.{q(c)}"
            for c in targets
        )
        return f"SELECT {select} FROM ({body}) AS usql_rows"

    def _partitioned_table(
        self, tn: n.TableName, construct: str
    ) -> tuple[QualifiedName, tuple[str, ...], dict[str, UType]]:
        nm, cols = self._table(tn)
        assert cols is not None
        db = self.catalog.get(nm.db)
        assert db is not None
        pcols = db.partitioned.get(nm.key, ())
        if not pcols:
            raise self.err(tn.pos, construct, f"{nm} is not a partitioned table (PARTITIONED BY (...))")
        return nm, pcols, dict(cols)

    def alter_partitions(self, st: n.AlterPartitions) -> None:
        construct = "ALTER TABLE " + ("ADD" if st.add else "DROP") + " PARTITION"
        nm, pcols, types = self._partitioned_table(st.table, construct)
        meta = self._meta(nm.db, st.pos)
        stmts = []
        for values in st.partitions:
            label = self._label_text(self._label(values, nm, pcols, types))
            if not st.if_flag:
                stmts.append(self._require_partition(meta, nm, label, present=not st.add))
            exists = self._partition_exists(meta, nm, label)
            if st.add:
                stmts.append(f"INSERT INTO {meta}.{META}.partitions SELECT {lit(nm.schema)}, {lit(nm.name)}, {label} "
                             f"WHERE NOT {exists};")  # fmt: skip
            else:
                row = self._label_text([q(c) for c in pcols])
                stmts.append(f"DELETE FROM {self._table_sql(nm, st.pos)} WHERE {row} IS NOT DISTINCT FROM {label};")
                stmts.append(f"DELETE FROM {meta}.{META}.partitions WHERE {_meta_key(nm, 'table_name')} "
                             f"AND label IS NOT DISTINCT FROM {label};")  # fmt: skip
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    def truncate_table(self, st: n.TruncateTable) -> None:
        target = self._table_sql(self._table(st.table)[0], st.pos)
        if not st.partitions:
            self.out.append(EmittedStatement("catalog", f"DELETE FROM {target};", st.pos.line, st.pos.column))
            return
        nm, pcols, types = self._partitioned_table(st.table, "TRUNCATE TABLE")
        row = self._label_text([q(c) for c in pcols])
        labels = [self._label_text(self._label(v, nm, pcols, types)) for v in st.partitions]
        stmts = [f"DELETE FROM {target} WHERE {row} IS NOT DISTINCT FROM {label};" for label in labels]
        self.out.append(EmittedStatement("catalog", "\n".join(stmts), st.pos.line, st.pos.column))

    def table_note(self, st: n.TableNote) -> None:
        self._table(st.table)
        self._note(st.pos, f"{st.text} has no effect locally (accepted and ignored)")

    # ------------------------------------------------------------ catalog: views, functions, procedures
    def create_object(self, st: n.CreateView | n.CreateFunction | n.CreateProcedure) -> None:
        kind = {n.CreateView: "VIEW", n.CreateFunction: "FUNCTION", n.CreateProcedure: "PROCEDURE"}[type(st)]
        nm, db = self._resolve(st.name, kind.lower())
        existing = db.kind_of(*nm.key)
        if existing is not None:
            if st.if_not_exists and existing == kind:
                self._note(st.pos, f"{kind.lower()} {nm} exists (IF NOT EXISTS)")
                return
            raise self.err(st.name.pos, f"CREATE {kind}", f"{existing.lower()} {nm} already exists")
        if isinstance(st, n.CreateProcedure) and self.call_depth:
            raise self.err(st.pos, "CREATE PROCEDURE", "a procedure cannot create procedures or functions")
        obj = CatalogObject(kind, st.text, self.source, st.pos.line, st.pos.column)
        db.objects[nm.key] = obj
        meta = self._meta(nm.db, st.pos)
        row = ", ".join(lit(v) for v in (nm.schema, nm.name, kind, st.text, self.source))
        sql = f"INSERT INTO {meta}.{META}.objects VALUES ({row}, {st.pos.line}, {st.pos.column});"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))

    def drop_object(self, st: n.DropObject) -> None:
        if st.kind == "SCHEMA":
            self._drop_schema(st)
            return
        nm, db = self._resolve(st.name, st.kind.lower())
        existing = db.kind_of(*nm.key)
        if existing != st.kind:
            if existing is None and st.if_exists:
                self._note(st.pos, f"{st.kind.lower()} {nm} does not exist (IF EXISTS)")
                return
            what = f"is a {existing.lower()}" if existing else "does not exist"
            raise self.err(st.name.pos, f"DROP {st.kind}", f"{nm} {what}")
        del db.objects[nm.key]
        meta = self._meta(nm.db, st.pos)
        sql = f"DELETE FROM {meta}.{META}.objects WHERE {_meta_key(nm, 'name')};"
        self.out.append(EmittedStatement("catalog", sql, st.pos.line, st.pos.column))
