"""The Spark SQL emitter: the intermediate form -> a Spark SQL script (Spark 3.5 / 4.x, e.g. Databricks).

Same front end as the DuckDB path (:func:`~.parser.parse` -> :mod:`.nodes`); only the dialect differs.
Rowset assignments become temporary views; EXTRACT becomes a raw ``USING csv`` view with every field
read as text, plus a typed view that converts the fields with C# parsing rules (a file set: a glob, and the
virtual columns taken from each row's file path with the pattern's regex); databases and tables become Spark
databases and parquet tables (``db.dbo.t`` is ``db.t``, ``master`` is ``default``); OUTPUT becomes
``INSERT OVERWRITE DIRECTORY ... SELECT <one formatted line per row>``, so the bytes of each line
follow the outputter's documented format. Spark writes a directory of part files (here one part
file, ``COALESCE(1)``), not a single file. Anything without a faithful Spark translation raises
:class:`UsqlError` "cannot be translated to Spark SQL: ..." at its position. See ``docs/usql-spark.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql import types as t
from airflow_provider_amlpipe.usql.catalog import MASTER
from airflow_provider_amlpipe.usql.dialects.spark.exprs import NOT_SPARK, SparkExprTranslator
from airflow_provider_amlpipe.usql.dialects.spark.extract import SparkExtract
from airflow_provider_amlpipe.usql.dialects.spark.values import (
    bq,
    slit,
    spark_column_type,
)
from airflow_provider_amlpipe.usql.emitter import DATABASE_STATEMENTS, SCRIPT_STATEMENTS, Rowset
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.exprs_common import Scope
from airflow_provider_amlpipe.usql.filesets import (
    is_file_set,
)
from airflow_provider_amlpipe.usql.options import text_format
from airflow_provider_amlpipe.usql.parser import parse
from airflow_provider_amlpipe.usql.types import UType

__all__ = ["SparkEmitter", "SparkStatement", "translate_to_spark"]

#: U-SQL's default database and the Spark database it maps to.
SPARK_MASTER = "default"
#: Database and table names the translator passes to Spark (the Hive metastore allows no more).
_SPARK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class _Db:
    """What the translator knows of a database: the Spark catalog is not read, so only what the script did.

    ``exists`` is None while the script has neither created nor dropped it (it may exist from an earlier job).
    ``tables`` maps a table to its columns, or None once dropped; ``complete`` means the script created the
    database (or dropped it), so a table missing from ``tables`` does not exist.
    """

    exists: bool | None
    complete: bool = False
    tables: dict[str, list[tuple[str, UType]] | None] = field(default_factory=dict)

    def absent(self, table: str) -> bool:
        """True if the table certainly does not exist."""
        if table in self.tables:
            return self.tables[table] is None
        return self.complete


def _column_def(name: str, ty: UType) -> str:
    """A Spark column definition; the comment keeps the U-SQL type, which Spark's types cannot (char, uint, ...)."""
    not_null = "" if ty.nullable else " NOT NULL"
    return f"{bq(name)} {spark_column_type(ty)}{not_null} COMMENT {slit(str(ty))}"


@dataclass(frozen=True)
class SparkStatement:
    """One Spark SQL statement and the position of the U-SQL statement it came from."""

    sql: str
    line: int
    column: int


class SparkEmitter(SparkExtract):
    """Translates a parsed script to Spark SQL statements; one instance per script.

    Inherits the dialect-neutral bookkeeping of the DuckDB emitter (variables, rowsets, view names,
    DECLARE checks, ORDER BY/FETCH); every method that writes SQL is overridden.
    """

    translator = SparkExprTranslator
    queries: ClassVar[dict[type, str]] = {
        n.RowsetRef: "rowset_query", n.TableRef: "table_query", n.Extract: "extract", n.Select: "select",
        n.SetOp: "set_op", n.Ordered: "ordered",
    }  # fmt: skip

    def __init__(self, source: str, params: Mapping[str, str]) -> None:
        super().__init__(source, params, Path("."))
        self.current_db = MASTER
        self.spark: list[SparkStatement] = []
        self.raw_counter = 0
        self.dbs: dict[str, _Db] = {MASTER: _Db(True)}

    def untranslatable(self, pos: n.Pos, construct: str, why: str) -> UsqlError:
        return UsqlError(self.source, pos.line, pos.column, construct, NOT_SPARK + why)

    # ------------------------------------------------------------ dialect hooks
    @staticmethod
    def _values_table(rows: str, columns: str) -> str:
        return f"VALUES {rows} AS usql_v({columns})"

    def unsupported(self, construct: str, node: object) -> UsqlError:
        pos = getattr(node, "pos", None)
        if not isinstance(pos, n.Pos):
            pos = n.Pos(1, 1)
        name = type(node).__name__
        return self.untranslatable(pos, name, f"{construct} {name} is not supported by the Spark emitter")

    def add(self, sql: str, pos: n.Pos) -> None:
        self.spark.append(SparkStatement(sql, pos.line, pos.column))

    # ------------------------------------------------------------ statements
    def translate(self, script: n.Script) -> list[SparkStatement]:
        """The Spark statements of the script."""
        self.compile_statements(script)
        return self.spark

    def ignored(self, st: n.Ignored) -> None:
        self.add(f"-- ignored: {' '.join(st.text.split())}", st.pos)

    def assign(self, a: n.Assign) -> None:
        if a.name in self.variables:
            raise self.err(a.pos, "variable", f"@{a.name} is a scalar variable and cannot name a rowset")
        sql, cols = self.query(a.query)
        view = self._view_name(a.name)
        self.rowsets[a.name] = Rowset(view, tuple(cols))
        self.add(f"CREATE OR REPLACE TEMPORARY VIEW {bq(view)} AS\n{sql};", a.pos)

    # ------------------------------------------------------------ catalog
    def _note(self, pos: n.Pos, text: str) -> None:
        self.add(f"-- note: {text}", pos)

    def _db_name(self, name: str, pos: n.Pos) -> str:
        """The quoted Spark database of a U-SQL database name (``master`` is Spark's ``default``)."""
        if name == MASTER:
            return bq(SPARK_MASTER)
        if not _SPARK_NAME.fullmatch(name) or name.lower() == SPARK_MASTER:
            raise self.untranslatable(pos, "DATABASE", f"{name!r} is not a Spark database name "
                                      "(letters, digits and _; 'default' is U-SQL's master)")  # fmt: skip
        return bq(name)

    def _db_state(self, name: str) -> _Db:
        return self.dbs.setdefault(name, _Db(None))

    def use_database(self, st: n.UseDatabase) -> None:
        spark_db = self._db_name(st.database, st.pos)
        if self._db_state(st.database).exists is False:
            raise self.err(st.pos, "USE DATABASE", f"database {st.database!r} does not exist (CREATE DATABASE it)")
        self.current_db = st.database
        self.add(f"USE {spark_db};", st.pos)

    def create_database(self, st: n.CreateDatabase) -> None:
        spark_db = self._db_name(st.name, st.pos)
        state = self._db_state(st.name)
        if state.exists:
            if not st.if_not_exists:
                raise self.err(st.pos, "CREATE DATABASE", f"database {st.name!r} already exists")
            self._note(st.pos, f"database {st.name} exists (IF NOT EXISTS)")
            return
        # Without IF NOT EXISTS Spark fails on an existing database, so afterwards the database is new and
        # empty: every table in it is known. With it, a database from an earlier job may hold unknown tables.
        fresh = not st.if_not_exists or state.exists is False
        self.dbs[st.name] = _Db(True, complete=fresh)
        self.add(f"CREATE DATABASE {'IF NOT EXISTS ' if st.if_not_exists else ''}{spark_db};", st.pos)

    def drop_database(self, st: n.DropDatabase) -> None:
        if st.name == MASTER:
            raise self.err(st.pos, "DROP DATABASE", "the master database cannot be dropped")
        spark_db = self._db_name(st.name, st.pos)
        if not self.drop_database_checked(st, self._db_state(st.name).exists is not False, self.current_db):
            return
        self.dbs[st.name] = _Db(False, complete=True)
        # CASCADE: dropping a U-SQL database drops the tables in it; Spark refuses a non-empty one without it
        self.add(f"DROP DATABASE {'IF EXISTS ' if st.if_exists else ''}{spark_db} CASCADE;", st.pos)

    def _spark_table(self, tn: n.TableName) -> tuple[str, str, _Db]:
        """(U-SQL database, quoted Spark ``db.table``, what is known of the database) of a table name."""
        if tn.schema not in (None, "dbo"):
            raise self.untranslatable(tn.pos, "schema", f"schema {tn.schema!r}: only dbo has a Spark equivalent "
                                      "(U-SQL db.dbo.table is Spark's db.table)")  # fmt: skip
        db = tn.database or self.current_db
        spark_db = self._db_name(db, tn.pos)
        if not _SPARK_NAME.fullmatch(tn.name):
            raise self.untranslatable(tn.pos, "table", f"{tn.name!r} is not a Spark table name (letters, digits, _)")
        state = self._db_state(db)
        if state.exists is False:
            raise self.err(tn.pos, "table", f"database {db!r} of table {tn} does not exist")
        return db, f"{spark_db}.{bq(tn.name)}", state

    def _table_columns(self, tn: n.TableName) -> tuple[str, str, list[tuple[str, UType]]]:
        """The U-SQL name ``db.dbo.t``, the Spark name and the columns of a table the script reads or inserts into."""
        db, sql, state = self._spark_table(tn)
        cols = state.tables.get(tn.name)
        if cols is not None:
            return f"{db}.dbo.{tn.name}", sql, cols
        if state.absent(tn.name):
            known = ", ".join(sorted(k for k, v in state.tables.items() if v is not None)) or "none"
            raise self.err(tn.pos, "table", f"unknown table {db}.dbo.{tn.name} (tables in {db}: {known})")
        raise self.untranslatable(tn.pos, "table", f"table {db}.dbo.{tn.name} is not created by this script, so "
                                  "its column types are unknown to the translator")  # fmt: skip

    def create_table(self, st: n.CreateTable) -> None:
        if getattr(st, "partitioned_by", ()):
            raise self.untranslatable(st.pos, "PARTITIONED BY", "a partitioned table (U-SQL's explicit "
                                      "partitions: ADD PARTITION, INSERT ... PARTITION, integrity checks)")  # fmt: skip
        db, target, state = self._spark_table(st.table)
        if state.tables.get(st.table.name) is not None:
            if st.if_not_exists:
                self._note(st.pos, f"table {db}.dbo.{st.table.name} exists (IF NOT EXISTS)")
                return
            raise self.err(st.table.pos, "CREATE TABLE", f"table {db}.dbo.{st.table.name} already exists")
        # the clauses only place the data (U-SQL's clustered index and distribution); the rows are the same
        dropped = "".join(f"-- dropped: {clause} (Spark tables have no clustered index or distribution)\n"
                          for clause in st.notes)  # fmt: skip
        ine = "IF NOT EXISTS " if st.if_not_exists else ""
        if st.query is not None:
            sql, cols = self.query(st.query)
            self._check_storable(cols, st.pos)
            select = ", ".join(f"CAST({bq(c)} AS {spark_column_type(ty)}) AS {bq(c)}" for c, ty in cols)
            stmt = f"CREATE TABLE {ine}{target} USING parquet AS\nSELECT {select} FROM (\n{sql}\n) AS usql_ctas;"
        else:
            cols = self._column_types(st.columns, "CREATE TABLE")
            self._check_storable(cols, st.pos)
            defs = ",\n  ".join(_column_def(c, ty) for c, ty in cols)
            stmt = f"CREATE TABLE {ine}{target} (\n  {defs}\n) USING parquet;"
        self.add(dropped + stmt, st.pos)
        state.exists = True
        state.tables[st.table.name] = cols

    def _check_storable(self, cols: list[tuple[str, UType]], pos: n.Pos) -> None:
        for name, ty in cols:
            if ty.name in ("unknown", "null"):
                raise self.err(pos, "CREATE TABLE", f"column {name!r} has no storable type ({ty})")

    def drop_table(self, st: n.DropTable) -> None:
        db, target, state = self._spark_table(st.table)
        if state.absent(st.table.name):
            if st.if_exists:
                self._note(st.pos, f"table {db}.dbo.{st.table.name} does not exist (IF EXISTS)")
                return
            raise self.err(st.table.pos, "table", f"unknown table {db}.dbo.{st.table.name}")
        state.tables[st.table.name] = None
        self.add(f"DROP TABLE {'IF EXISTS ' if st.if_exists else ''}{target};", st.pos)

    def insert(self, st: n.Insert) -> None:
        if getattr(st, "partition", None) is not None or getattr(st, "on_violation", None) is not None:
            raise self.untranslatable(st.pos, "INSERT PARTITION", "INSERT into table partitions")
        name, target, existing = self._table_columns(st.table)
        types = dict(existing)
        targets = list(st.columns) if st.columns else [c for c, _ in existing]
        for c in targets:
            if c not in types:
                raise self.err(st.table.pos, "INSERT", f"table {name} has no column {c!r}")
            if targets.count(c) > 1:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} is listed twice")
        for c, ty in existing:
            if c not in targets and not ty.nullable:
                raise self.err(st.table.pos, "INSERT", f"column {c!r} ({ty}) is not nullable and needs a value")
        sql, cols = self.query(st.query)
        if len(cols) != len(targets):
            raise self.err(st.pos, "INSERT", f"the query yields {len(cols)} column(s) but {len(targets)} are inserted "
                           f"into {name} ({', '.join(targets)})")  # fmt: skip
        source = dict(zip(targets, cols, strict=True))
        exprs = []
        for c, ty in existing:
            if c not in source:
                exprs.append(f"CAST(NULL AS {spark_column_type(ty)})")  # an unlisted column gets null, as in U-SQL
                continue
            src, sty = source[c]
            if not t.assignable(sty, ty):
                raise self.err(st.pos, "INSERT", f"column {src!r} is {sty} but {st.table.name}.{c} is {ty}")
            same = sty.name == ty.name
            exprs.append(
                f"CAST({bq(src)} AS {spark_column_type(ty)})" if same else self.x.converted_column(bq(src), sty, ty)
            )
        col_list = ", ".join(bq(c) for c, _ in existing)
        body = f"INSERT INTO {target} ({col_list})\nSELECT {', '.join(exprs)} FROM (\n{sql}\n) AS usql_insert;"
        self.add(body, st.pos)

    def spark_path(self, e: n.Expr, construct: str, allow_file_set: bool = False) -> str:
        """A constant path, kept as written (Spark resolves it against its default file system)."""
        v = self.constant_path(e, construct)
        if is_file_set(v) and not allow_file_set:
            raise self.err(e.pos, "file set", f"file set patterns ({v!r}) are not supported in {construct}")
        return v

    # ------------------------------------------------------------ OUTPUT
    def output(self, o: n.Output) -> None:
        fmt = text_format(o.outputter, self.source, self.constants, escape_character=True)
        if fmt.encoding != "utf-8":
            raise self.untranslatable(o.outputter.pos, "encoding", "outputters write UTF-8 only")
        target = self.spark_path(o.path, "OUTPUT")
        sql, cols = self.query(o.source)
        scope = Scope([(None, c, ty) for c, ty in cols])
        parts = [self._format_value(bq(c), ty, fmt, o) for c, ty in cols]
        sep = ", " + slit(fmt.delimiter) + ", "
        line = f"concat({sep.join(parts)})" if parts else "''"
        body = f"SELECT {line} AS usql_line\nFROM (\n{sql}\n) AS usql_out"
        if o.order_by or o.offset is not None or o.fetch is not None:
            body += self._order_fetch(o.order_by, o.offset, o.fetch, scope)
        new_line = slit(fmt.row_delimiter or "\r\n")
        if fmt.output_header:
            names = [fmt.escape(c) for c, _ in cols]
            header = fmt.delimiter.join(('"' + c.replace('"', '""') + '"' if fmt.quoting else c) for c in names)
            # The csv writer adds the header line; quoting is switched off (quote \u0000, separator \u0001)
            # because each value already is one formatted line. Lines the csv writer would still quote fail.
            options = ("header 'true', sep '\\u0001', quote '\\u0000', escapeQuotes 'false', "
                       "ignoreLeadingWhiteSpace 'false', ignoreTrailingWhiteSpace 'false', emptyValue '', "
                       f"nullValue '', encoding 'UTF-8', lineSep {new_line}")  # fmt: skip
            guard = (
                "CASE WHEN usql_line RLIKE '[\\\\x00\\\\x01\\\\r\\\\n]' THEN raise_error("
                "'cannot be written by the Spark csv writer with a header: a line holds a line break or "
                "\\\\u0000/\\\\u0001') ELSE usql_line END"
            )
            select = f"SELECT /*+ COALESCE(1) */ {guard} AS {bq(header)}"
            using = f"USING csv OPTIONS ({options})"
        else:
            select = "SELECT /*+ COALESCE(1) */ usql_line AS value"
            using = f"USING text OPTIONS (lineSep {new_line}, encoding 'UTF-8')"
        stmt = f"INSERT OVERWRITE DIRECTORY {slit(target)}\n{using}\n{select}\nFROM (\n{body}\n) AS usql_lines;"
        self.add(stmt, o.pos)

    @staticmethod
    def _char_code_text(col: str) -> str:
        return f"CAST(ascii({col}) AS STRING)"

    @staticmethod
    def _quoted_text(v: str) -> str:
        # concat() is null when an argument is (as DuckDB's ||), so a null value stays null for nullEscape
        return f"""concat('"', replace({v}, '"', '""'), '"')"""

    # ------------------------------------------------------------ queries
    def table_query(self, qn: n.TableRef) -> tuple[str, list[tuple[str, UType]]]:
        _, table, cols = self._table_columns(qn.table)
        return f"SELECT {', '.join(bq(c) for c, _ in cols)} FROM {table}", list(cols)

    def _set_op_sql(self, qn: n.SetOp, left: str, right: str) -> str:
        op = qn.op + (" ALL" if qn.quantifier == "ALL" else " DISTINCT")
        return f"SELECT * FROM (\n{left}\n) AS usql_l\n{op}\nSELECT * FROM (\n{right}\n) AS usql_r"

    # ------------------------------------------------------------ SELECT
    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        sql, scope, _ = self._source(src)
        return sql, scope

    def _source(self, src: n.Source) -> tuple[str, Scope, bool]:
        """FROM-clause SQL, its scope, and whether it ends in LATERAL VIEW (nothing may be joined after it)."""
        if isinstance(src, n.RowsetRef):
            rs = self._rowset(src)
            alias = src.alias or src.name
            return f"{bq(rs.view)} AS {bq(alias)}", Scope([(alias, c, ty) for c, ty in rs.columns]), False
        if isinstance(src, n.SubquerySource):
            sql, cols = self.query(src.query)
            return f"(\n{sql}\n) AS {bq(src.alias)}", Scope([(src.alias, c, ty) for c, ty in cols]), False
        if isinstance(src, n.ValuesSource):
            vsql, vscope = self.values(src)
            return vsql, vscope, False
        if isinstance(src, n.TableRef):
            _, table, cols = self._table_columns(src.table)
            alias = src.alias or src.table.name
            return f"{table} AS {bq(alias)}", Scope([(alias, c, ty) for c, ty in cols]), False
        if isinstance(src, n.Join):
            return self.spark_join(src)
        if isinstance(src, n.Explode):
            raise self.err(src.pos, "FROM", "EXPLODE needs CROSS APPLY")
        raise self.unsupported("FROM source", src)

    def spark_join(self, j: n.Join) -> tuple[str, Scope, bool]:
        left_sql, left, left_lateral = self._source(j.left)
        if isinstance(j.right, n.Explode):
            return self.explode(left_sql, left, j.right)
        if left_lateral:
            raise self.untranslatable(j.pos, "JOIN", "a JOIN after CROSS/OUTER APPLY EXPLODE (Spark's LATERAL VIEW "
                                      "must follow all joins); move the APPLY into a rowset of its own")  # fmt: skip
        right_sql, right, _ = self._source(j.right)
        on = self.join_condition(j, left, right)
        kind = j.kind
        if kind.endswith("SEMIJOIN"):
            keyword = "LEFT ANTI JOIN" if "ANTI" in kind else "LEFT SEMI JOIN"
            if kind.startswith("RIGHT"):
                return f"{right_sql}\n{keyword} {left_sql}{on}", right, False
            return f"{left_sql}\n{keyword} {right_sql}{on}", left, False
        keywords = {"INNER": "INNER JOIN", "LEFT": "LEFT OUTER JOIN", "RIGHT": "RIGHT OUTER JOIN",
                    "FULL": "FULL OUTER JOIN", "CROSS": "CROSS JOIN"}  # fmt: skip
        if kind not in keywords:
            raise self.untranslatable(j.pos, "JOIN", f"join kind {kind!r}")
        lcols = [(a, c, ty.with_nullable(True) if kind in ("RIGHT", "FULL") else ty) for a, c, ty in left.columns]
        rcols = [(a, c, ty.with_nullable(True) if kind in ("LEFT", "FULL") else ty) for a, c, ty in right.columns]
        return f"{left_sql}\n{keywords[kind]} {right_sql}{on}", Scope(lcols + rcols), False

    def explode(self, left_sql: str, left: Scope, ex: n.Explode) -> tuple[str, Scope, bool]:
        sql, _, scope = self.exploded(left, ex)
        columns = ", ".join(bq(c) for c in ex.columns)
        outer = "OUTER " if ex.outer else ""
        return f"{left_sql}\nLATERAL VIEW {outer}explode({sql}) {bq(ex.alias)} AS {columns}", scope, True


#: Statement -> the SparkEmitter method translating it.
SparkEmitter.statements = {**SCRIPT_STATEMENTS, **DATABASE_STATEMENTS}


def translate_to_spark(text: str, *, source_name: str = "script.usql", params: dict[str, str] | None = None) -> str:
    """Translate a U-SQL script to a Spark SQL script (Spark 3.5 / 4.x).

    The same front end as :func:`~.compiler.compile_script` (``@@name@@`` placeholders must already be
    substituted); ``params`` override ``DECLARE EXTERNAL`` defaults. Raises :class:`UsqlError` for any
    problem in the script and for constructs with no faithful Spark translation.
    """
    script = parse(text, source_name)
    statements = SparkEmitter(source_name, params or {}).translate(script)
    header = f"-- Spark SQL (3.5+/4.x) translated from {source_name} by airflow_provider_amlpipe.usql"
    body = "\n\n".join(f"-- {source_name}:{s.line}\n{s.sql}" for s in statements)
    return f"{header}\n\n{body}\n"
