"""A third SQL dialect costs one small class: SQLite (Python's sqlite3), rowsets of VALUES and SELECT ... FROM ...
WHERE, on the dialect-neutral emitter base; everything else is refused through ``unsupported``."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import ClassVar

import pytest

from airflow_provider_amlpipe.usql import UsqlError, translate_to_spark
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.emitter import Emitter, Rowset
from airflow_provider_amlpipe.usql.exprs_common import Scope, Typed, q
from airflow_provider_amlpipe.usql.parser import parse
from airflow_provider_amlpipe.usql.translator import Translator
from airflow_provider_amlpipe.usql.types import UType

SQLITE_TYPES = {"int": "INTEGER", "long": "INTEGER", "bool": "INTEGER", "double": "REAL", "string": "TEXT"}


class SqliteEmitter(Emitter):
    """U-SQL rowsets as SQLite temporary views."""

    translator = Translator  # the dialect-neutral translator writes standard SQL, which SQLite reads
    statements: ClassVar[dict[type, str]] = {n.Declare: "declare", n.Assign: "assign"}

    def __init__(self, source: str) -> None:
        super().__init__(source, {}, Path("."))
        self.sql: list[str] = []

    @staticmethod
    def _ident(name: str) -> str:
        return q(name)

    @staticmethod
    def _type_sql(ty: UType) -> str:
        return SQLITE_TYPES.get(ty.name, "BLOB")

    @staticmethod
    def _values_table(rows: str, columns: str) -> str:
        # SQLite names the columns of VALUES only in a common table expression
        return f"(WITH usql_v({columns}) AS (VALUES {rows}) SELECT * FROM usql_v) AS usql_v"

    def _note(self, pos: n.Pos, text: str) -> None:
        self.sql.append(f"-- note: {text}")

    def _param_sql(self, raw: str, typ: UType, d: n.Declare) -> Typed:
        raise self.unsupported("DECLARE EXTERNAL", d)

    def source_sql(self, src: n.Source) -> tuple[str, Scope]:
        if isinstance(src, n.RowsetRef):
            rs = self._rowset(src)
            alias = src.alias or src.name
            return f"{q(rs.view)} AS {q(alias)}", Scope([(alias, c, ty) for c, ty in rs.columns])
        if isinstance(src, n.ValuesSource):
            return self.values(src)
        raise self.unsupported("FROM", src)

    def query(self, qn: n.Query) -> tuple[str, list[tuple[str, UType]]]:
        if isinstance(qn, n.Select):
            return self.select(qn)
        if isinstance(qn, n.RowsetRef):
            rs = self._rowset(qn)
            return f"SELECT * FROM {q(rs.view)}", list(rs.columns)
        raise self.unsupported("query", qn)

    def assign(self, a: n.Assign) -> None:
        self._check_rowset_name(a.name, a.pos)
        sql, cols = self.query(a.query)
        view = self._view_name(a.name)
        self.rowsets[a.name] = Rowset(view, tuple(cols))
        self.sql.append(f"CREATE TEMP VIEW {q(view)} AS\n{sql};")


def to_sqlite(text: str) -> tuple[SqliteEmitter, str]:
    emitter = SqliteEmitter("s.usql")
    emitter.compile_statements(parse(text, "s.usql"))
    return emitter, "\n".join(emitter.sql)


SCRIPT = """
DECLARE @least int = 1;
@a = SELECT * FROM (VALUES (1, "a", 2.5), (2, "b", 3.5), (3, "b", 1.0), (4, "c", 0.5)) AS T(n, s, x);
@b = SELECT n * 10 AS m, s, x + 1.0 AS y FROM @a WHERE n > @least && (s == "b" || x < 1.0);
"""


def test_a_script_runs_on_sqlite() -> None:
    emitter, sql = to_sqlite(SCRIPT)
    db = sqlite3.connect(":memory:")
    db.executescript(sql)
    view = emitter.rowsets["b"].view
    assert db.execute(f'SELECT * FROM "{view}" ORDER BY m').fetchall() == [(20, "b", 4.5), (30, "b", 2.0),
                                                                         (40, "c", 1.5)]  # fmt: skip
    assert [c for c, _ in emitter.rowsets["b"].columns] == ["m", "s", "y"]


def test_the_neutral_checks_come_with_the_base() -> None:
    with pytest.raises(UsqlError, match="unknown rowset @nope"):
        to_sqlite("@b = SELECT * FROM @nope;")
    with pytest.raises(UsqlError, match="cannot assign a string value to @x of type int"):
        to_sqlite('DECLARE @x int = "a";')


def test_what_the_dialect_lacks_is_unsupported() -> None:
    with pytest.raises(UsqlError, match=r"s\.usql:5:1: error: statement: unsupported statement Output"):
        to_sqlite(SCRIPT + 'OUTPUT @b TO "b.csv" USING Outputters.Csv();')
    with pytest.raises(UsqlError, match="unsupported query Extract"):
        to_sqlite('@e = EXTRACT a string FROM "f.csv" USING Extractors.Csv();')


def test_the_shipped_dialects_share_the_declare_of_the_base() -> None:
    # DECLARE @v = expr (the value's type) is the base's, so the Spark translation has it too
    sql = translate_to_spark(
        "DECLARE @n = 3;\n@a = SELECT * FROM (VALUES (1)) AS T(k);\n"
        'OUTPUT (SELECT k + @n AS s FROM @a) TO "o.csv" USING Outputters.Csv();',
        source_name="s.usql",
    )
    assert "SELECT (`a`.`k` + (3)) AS `s`" in sql
