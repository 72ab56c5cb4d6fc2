"""Catalog objects kept between scripts: views, table-valued functions, procedures, schemas, partitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script

DEFINE = """
CREATE DATABASE IF NOT EXISTS lib;
USE DATABASE lib;
CREATE SCHEMA IF NOT EXISTS s;
CREATE VIEW IF NOT EXISTS s.Nums AS SELECT * FROM (VALUES (1), (2), (3)) AS T(k);
CREATE FUNCTION IF NOT EXISTS s.Over(@min int = 1) RETURNS @r TABLE(k int)
AS BEGIN
    @r = SELECT k FROM Nums WHERE k > @min;
END;
CREATE PROCEDURE IF NOT EXISTS s.Save(@min int, @path string = "out/saved.csv")
AS BEGIN
    OUTPUT lib.s.Over(@min) TO @path USING Outputters.Csv();
END;
"""


def run(text: str, tmp_path: Path) -> None:
    run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")


def err(text: str, tmp_path: Path) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        run(text, tmp_path)
    return info.value


def test_objects_are_stored_and_reparsed_by_later_scripts(tmp_path: Path) -> None:
    run(DEFINE, tmp_path)
    run(DEFINE, tmp_path)  # IF NOT EXISTS: nothing is redefined
    run('lib.s.Save(1, DEFAULT);\nlib.s.Save(2, "out/two.csv");', tmp_path)
    assert (tmp_path / "out" / "saved.csv").read_bytes() == b"2\r\n3\r\n"
    assert (tmp_path / "out" / "two.csv").read_bytes() == b"3\r\n"
    run(
        "USE lib;\nUSE SCHEMA s;\n@n = SELECT COUNT(*) AS c FROM Nums;\n"
        'OUTPUT @n TO "out/n.csv" USING Outputters.Csv();',
        tmp_path,
    )
    assert (tmp_path / "out" / "n.csv").read_bytes() == b"3\r\n"
    run("USE lib;\nDROP PROCEDURE s.Save;\nDROP FUNCTION s.Over;\nDROP VIEW s.Nums;\nDROP SCHEMA s;", tmp_path)
    e = err("lib.s.Save(1);", tmp_path)
    assert (e.line, e.column, e.construct) == (1, 1, "schema")


def test_errors_in_a_stored_body_are_reported_where_it_is_used(tmp_path: Path) -> None:
    run("CREATE FUNCTION Bad() RETURNS @r AS BEGIN\n  @r = SELECT nope FROM (VALUES (1)) AS T(a);\nEND;", tmp_path)
    e = err('\nOUTPUT Bad() TO "out/x.csv" USING Outputters.Csv();', tmp_path)
    assert (e.file, e.line, e.column, e.construct) == ("s.usql", 2, 8, "column")
    assert "in function master.dbo.Bad, at s.usql:2:15" in e.message


def test_inserting_into_a_partition_that_was_not_added_fails(tmp_path: Path) -> None:
    table = "CREATE TABLE p (k int, v string, INDEX i CLUSTERED (k) PARTITIONED BY (v) DISTRIBUTED BY HASH (k));\n"
    e = err(table + 'INSERT INTO p PARTITION ("a") VALUES (1);', tmp_path)
    assert (e.line, e.construct) == (2, "runtime")
    assert "partition [a] of master.dbo.p does not exist" in e.message
    e = err('ALTER TABLE p ADD PARTITION ("a");\nALTER TABLE p ADD PARTITION ("a");', tmp_path)
    assert (e.line, e.construct) == (2, "runtime") and "already exists" in e.message
    e = err('ALTER TABLE p DROP PARTITION ("zzz");', tmp_path)
    assert "does not exist" in e.message


@pytest.mark.parametrize(
    ("text", "line", "col", "construct", "fragment"),
    [
        ("@b = SELECT * FROM dbo.f(1) AS x;", 1, 20, "table-valued function", "master.dbo.f does not exist"),
        (
            "CREATE VIEW v AS SELECT 1 AS a;\n@b = SELECT * FROM v(1) AS x;",
            2,
            20,
            "table-valued function",
            "is a view, not a function",
        ),
        (
            "CREATE VIEW v AS SELECT 1 AS a;\nCREATE FUNCTION v() RETURNS @r AS BEGIN @r = SELECT 1 AS a; END;",
            2,
            17,
            "CREATE FUNCTION",
            "view master.dbo.v already exists",
        ),
        (
            "CREATE FUNCTION f(@a int) RETURNS @r AS BEGIN @r = SELECT @a AS a; END;\n@x = f();",
            2,
            6,
            "call",
            "no default value",
        ),
        (
            "CREATE FUNCTION f(@a int) RETURNS @r AS BEGIN @r = SELECT @a AS a; END;\n@x = f(1, 2);",
            2,
            6,
            "call",
            "takes 1 argument(s), 2 given",
        ),
        (
            'CREATE FUNCTION f(@a int) RETURNS @r AS BEGIN @r = SELECT @a AS a; END;\n@x = f("1");',
            2,
            8,
            "type",
            "cannot assign a string",
        ),
        (
            "CREATE FUNCTION f() RETURNS @r TABLE(b int) AS BEGIN @r = SELECT 1 AS a; END;\n@x = f();",
            2,
            6,
            "CREATE FUNCTION",
            "RETURNS declares (b)",
        ),
        (
            "CREATE FUNCTION f() RETURNS @r AS BEGIN @s = SELECT 1 AS a; END;\n@x = f();",
            2,
            6,
            "CREATE FUNCTION",
            "never assigns its result @r",
        ),
        ("CREATE FUNCTION f() RETURNS int AS BEGIN END;", 1, 1, "CREATE FUNCTION", "scalar functions"),
        ("DROP VIEW v;", 1, 11, "DROP VIEW", "master.dbo.v does not exist"),
        ("nope(1);", 1, 1, "procedure", "master.dbo.nope does not exist"),
        ("USE SCHEMA s;", 1, 1, "USE SCHEMA", "does not exist"),
        ("CREATE TABLE s.t (a int);", 1, 14, "schema", "schema 's' does not exist"),
        ("CREATE SCHEMA s;\nCREATE TABLE s.t (a int);\nDROP SCHEMA s;", 3, 1, "DROP SCHEMA", "not empty"),
        ("TRUNCATE TABLE t;", 1, 16, "table", "unknown table master.dbo.t"),
        (
            "CREATE TABLE t (a int);\nALTER TABLE t ADD PARTITION (1);",
            2,
            13,
            "ALTER TABLE ADD PARTITION",
            "not a partitioned table",
        ),
        (
            "CREATE TABLE t (a int, b int, INDEX i CLUSTERED (a) PARTITIONED BY (b) DISTRIBUTED BY HASH (a));\n"
            "INSERT INTO t VALUES (1, 2);",
            2,
            1,
            "INSERT",
            "needs PARTITION",
        ),
        (
            "CREATE TABLE t (a int, b int, INDEX i CLUSTERED (a) PARTITIONED BY (b) DISTRIBUTED BY HASH (a));\n"
            'ALTER TABLE t ADD PARTITION ("x");',
            2,
            30,
            "PARTITION",
            "is string but column 'b' is int",
        ),
        (
            "CREATE TABLE t (a int, b int, INDEX i CLUSTERED (a) PARTITIONED BY (b) DISTRIBUTED BY HASH (a));\n"
            "INSERT INTO t (a, b) PARTITION (1) VALUES (1, 2);",
            2,
            13,
            "INSERT",
            "takes its value from PARTITION",
        ),
        ("ALTER TABLE t ADD COLUMN c int;", 1, 15, "ALTER TABLE", "only ALTER TABLE"),
        # kept unsupported, with the construct named
        (
            'CREATE DATA SOURCE ds FROM AZURESQLDB WITH (PROVIDER_STRING = "x");',
            1,
            1,
            "CREATE DATA SOURCE",
            "not supported",
        ),
        ("DROP DATA SOURCE IF EXISTS ds;", 1, 1, "DROP DATA SOURCE", "not supported"),
        ('CREATE CREDENTIAL c WITH USER_NAME = "u", IDENTITY = "i";', 1, 1, "CREATE CREDENTIAL", "not supported"),
        ('CREATE EXTERNAL TABLE x (a int) FROM ds LOCATION "dbo.x";', 1, 1, "CREATE EXTERNAL TABLE", "not supported"),
        ('@p = SELECT * FROM EXTERNAL ds LOCATION "dbo.p";', 1, 20, "FROM EXTERNAL", "not supported"),
    ],
)
def test_catalog_object_errors(text: str, line: int, col: int, construct: str, fragment: str, tmp_path: Path) -> None:
    with pytest.raises(UsqlError) as info:
        compile_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    e = info.value
    assert (e.line, e.column, e.construct) == (line, col, construct), e.render()
    assert fragment in e.message, e.render()
