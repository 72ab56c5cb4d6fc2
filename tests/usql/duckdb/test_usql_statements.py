"""Statements: IF (folded at compile time), script-bound objects (DECLARE FUNCTION/PROCEDURE/VIEW), functions
returning several rowsets, @@JobInfo, OUTPUT ... EXPIRATION, and the statements that stay refused."""

from __future__ import annotations

import getpass
import socket
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from support.paths import USQL_CASES

from airflow_provider_amlpipe.usql import JobInfo, UsqlError, compile_script, run_script, translate_to_spark
from airflow_provider_amlpipe.usql import nodes as n
from airflow_provider_amlpipe.usql.consts import NotConstant, fold
from airflow_provider_amlpipe.usql.parser import Parser

GOLDEN_IF = USQL_CASES / "statements_if" / "script.usql"
ONE_ROW = "FROM (VALUES (1)) AS T(x)"


def run(text: str, tmp_path: Path, **kwargs: object) -> dict[str, bytes]:
    """Runs ``text``; returns the written files (relative to ``tmp_path``) and their bytes."""
    report = run_script(text, source_name="s.usql", base_dir=tmp_path, catalog_dir=tmp_path / "catalog", **kwargs)
    return {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in report.rows_written}


def err(text: str, tmp_path: Path) -> UsqlError:
    with pytest.raises(UsqlError) as info:
        run(text, tmp_path)
    return info.value


# ---------------------------------------------------------------- IF


def test_if_takes_the_branch_of_the_default_parameters(tmp_path: Path) -> None:
    # the golden case runs with @region = "fr-fr" (ELSE branch); the defaults take the nested THEN branch
    out = run(GOLDEN_IF.read_text(), tmp_path)
    assert out == {"out/picked.csv": b'1,"en-us",10\r\n3,"en-us",30\r\n'}


def test_if_elseif_and_parameters_of_every_type(tmp_path: Path) -> None:
    text = (
        "DECLARE EXTERNAL @n int = 1;\nDECLARE EXTERNAL @on bool = false;\n"
        f'IF @n == 2 THEN @r = SELECT "two" AS a {ONE_ROW};\n'
        f'ELSEIF @n > 2 AND @on THEN @r = SELECT "many" AS a {ONE_ROW};\n'
        f'ELSE @r = SELECT "other" AS a {ONE_ROW};\nEND;\n'
        'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();'
    )
    assert run(text, tmp_path, params={"n": "5", "on": "true"}) == {"out/r.csv": b'"many"\r\n'}
    assert run(text, tmp_path, params={"n": "2"}) == {"out/r.csv": b'"two"\r\n'}
    assert run(text, tmp_path, params={"n": "5"}) == {"out/r.csv": b'"other"\r\n'}
    notes = compile_script(text, base_dir=tmp_path, catalog_dir=tmp_path / "c", params={"n": "2"}).notes
    assert "IF: the condition at line 3 is true; its branch is compiled" in notes


def test_if_in_a_catalog_function_depends_on_its_arguments(tmp_path: Path) -> None:
    run(
        "CREATE FUNCTION Pick(@big bool = false) RETURNS @r TABLE(v string) AS BEGIN\n"
        f'  IF @big THEN @r = SELECT "big" AS v {ONE_ROW}; ELSE @r = SELECT "small" AS v {ONE_ROW}; END;\n'
        "END;",
        tmp_path,
    )
    text = (
        'OUTPUT Pick(true) TO "out/t.csv" USING Outputters.Csv();\nOUTPUT Pick() TO "out/f.csv" USING Outputters.Csv();'
    )
    assert run(text, tmp_path) == {"out/t.csv": b'"big"\r\n', "out/f.csv": b'"small"\r\n'}


@pytest.mark.parametrize(
    ("text", "line", "col", "construct", "fragment"),
    [
        ("IF 1 THEN @r = @r; END;", 1, 4, "IF", "must be a bool expression, not int"),
        ("DECLARE @d DateTime = DateTime.Now;\nIF @d.Year > 2000 THEN END;", 2, 12, "IF", "constant-foldable"),
        ("IF @nope THEN END;", 1, 4, "variable", "unknown variable @nope"),
        ("DECLARE @b bool? = null;\nIF @b THEN END;", 2, 4, "IF", "the IF condition is null"),
        ("IF true THEN\n@r = SELECT 1 AS a FROM (VALUES (1)) AS T(x);", 2, 46, "syntax", "expected END closing IF"),
        ("IF true THEN END", 1, 17, "syntax", "expected ';' after IF ... END"),
    ],
)
def test_if_errors(text: str, line: int, col: int, construct: str, fragment: str, tmp_path: Path) -> None:
    e = err(text, tmp_path)
    assert (e.line, e.column, e.construct) == (line, col, construct)
    assert fragment in e.message


# ---------------------------------------------------------------- script-bound objects, several results


def test_script_bound_objects_are_not_stored_in_the_catalog(tmp_path: Path) -> None:
    define = f"DECLARE FUNCTION @f() RETURNS @r AS BEGIN @r = SELECT 1 AS a {ONE_ROW}; END;\n"
    assert run(define + 'OUTPUT @f() TO "out/a.csv" USING Outputters.Csv();', tmp_path) == {"out/a.csv": b"1\r\n"}
    e = err('OUTPUT @f() TO "out/a.csv" USING Outputters.Csv();', tmp_path)
    assert (e.line, e.column, e.construct) == (1, 8, "table-valued function")
    assert "@f is not declared (DECLARE FUNCTION @f ... before this statement)" in e.message


def test_a_function_returning_several_rowsets(tmp_path: Path) -> None:
    text = (
        "DECLARE FUNCTION @f(@k int) RETURNS (@a TABLE(a long), @b) AS BEGIN\n"
        f"  @a = SELECT @k AS a {ONE_ROW};\n  @b = SELECT @k * 10 AS b {ONE_ROW};\nEND;\n"
        "(@x, @y) = @f(2);\n"
        '@z = SELECT x.a, y.b FROM @x AS x CROSS JOIN @y AS y;\nOUTPUT @z TO "out/z.csv" USING Outputters.Csv();'
    )
    assert run(text, tmp_path) == {"out/z.csv": b"2,20\r\n"}


@pytest.mark.parametrize(
    ("text", "line", "col", "construct", "fragment"),
    [
        (
            "DECLARE FUNCTION @f() RETURNS (@a, @b) AS BEGIN @a = @t; @b = @t; END;\n@c = @f();",
            3,
            6,
            "table-valued function",
            "@f returns 2 rowsets; assign them all: (@a, @b) = @f(...);",
        ),
        (
            "DECLARE FUNCTION @f() RETURNS @a AS BEGIN @a = @t; END;\n(@c, @d) = @f();",
            3,
            12,
            "table-valued function",
            "@f returns one rowset; assign it with @x = @f(...);",
        ),
        ("(@c, @c) = f();", 2, 1, "rowset", "@c is assigned twice"),
        ("DECLARE VIEW @t AS SELECT 2 AS b FROM (VALUES (1)) AS T(x);", 2, 14, "DECLARE VIEW", "already declared"),
        (
            "DECLARE PROCEDURE @p() AS BEGIN END;\n@p = SELECT 1 AS a FROM @t;",
            3,
            1,
            "variable",
            "script-bound procedure",
        ),
        ("DECLARE PROCEDURE @p() AS BEGIN END;\nDECLARE @p int = 1;", 3, 1, "DECLARE", "already declared"),
        (
            'DECLARE PROCEDURE @p() AS BEGIN END;\nOUTPUT @p() TO "o.csv" USING Outputters.Csv();',
            3,
            8,
            "table-valued function",
            "@p is a script-bound procedure, not a function",
        ),
        ("@t(1);", 2, 1, "procedure", "@t is a rowset, not a procedure"),
        ("DECLARE TYPE @ty AS TABLE(a int);", 2, 1, "DECLARE TYPE", "table types"),
        ('DECLARE ASSEMBLY @asm FROM "x.dll";', 2, 1, "DECLARE ASSEMBLY", "user code assemblies"),
        ("DECLARE FUNCTION @f(@b TABLE(a int)) RETURNS @r AS BEGIN END;", 2, 24, "table parameter", "@b TABLE"),
    ],
)
def test_script_bound_object_errors(
    text: str, line: int, col: int, construct: str, fragment: str, tmp_path: Path
) -> None:
    e = err(f"@t = SELECT 1 AS a {ONE_ROW};\n" + text, tmp_path)
    assert (e.line, e.column, e.construct) == (line, col, construct)
    assert fragment in e.message


def test_errors_in_a_script_bound_body_name_the_object(tmp_path: Path) -> None:
    e = err(
        f"DECLARE FUNCTION @f() RETURNS @r AS BEGIN\n  @r = SELECT nope {ONE_ROW};\nEND;\n"
        'OUTPUT @f() TO "out/x.csv" USING Outputters.Csv();',
        tmp_path,
    )
    assert (e.line, e.column, e.construct) == (4, 8, "column")
    assert "(in function @f, at s.usql:2:15)" in e.message


# ---------------------------------------------------------------- @@JobInfo

JOB_SELECT = (
    "@data = SELECT @@JobInfo.Id, @@JobInfo.Name AS JobName, @@JobInfo.Priority, @@JobInfo.Allocation,\n"
    "  @@JobInfo.Account.Name AS AccountName, @@JobInfo.Submit.Alias, @@JobInfo.Submit.Date\n"
    "FROM (VALUES (1)) AS T(x);\n"
)


def test_job_info_takes_the_given_values(tmp_path: Path) -> None:
    job = JobInfo(name="nightly", id=uuid.UUID(int=255), priority=1000, allocation=5, account_name="acct",
                  submit_alias="ann@contoso.com", submit_date=datetime(2018, 6, 21, 10, 30))  # fmt: skip
    text = (
        JOB_SELECT
        + "DECLARE CONST @out = \"out/\" + @@JobInfo.Submit.Alias.Substring(0, @@JobInfo.Submit.Alias.IndexOf('@'))"
        ' + "/job.csv";\nOUTPUT @data TO @out USING Outputters.Csv(outputHeader: true);'
    )
    assert run(text, tmp_path, job_info=job) == {
        "out/ann/job.csv": b'"Id","JobName","Priority","Allocation","AccountName","Alias","Date"\r\n'
        b'00000000-0000-0000-0000-0000000000ff,"nightly",1000,5,"acct","ann@contoso.com",2018-06-21T10:30:00.0000000\r\n'
    }


def test_job_info_defaults_describe_the_local_run(tmp_path: Path) -> None:
    text = JOB_SELECT + 'OUTPUT @data TO "out/job.csv" USING Outputters.Csv();'
    report = run_script(text, source_name="jobs/nightly.usql", base_dir=tmp_path, catalog_dir=tmp_path / "c")
    fields = (tmp_path / "out" / "job.csv").read_text().rstrip("\r\n").split(",")
    uuid.UUID(fields[0])
    assert fields[1:6] == ['"nightly.usql"', "", "", '"local"', f'"{getpass.getuser()}@{socket.gethostname()}"']
    assert datetime.fromisoformat(fields[6][:19]) <= datetime.now()
    assert report.rows_written


def test_job_info_unknown_property(tmp_path: Path) -> None:
    e = err(f"@d = SELECT @@JobInfo.Submit.User AS u {ONE_ROW};", tmp_path)
    assert (e.line, e.column, e.construct) == (1, 30, "@@JobInfo")
    assert "@@JobInfo.Submit.User is not a job property" in e.message


# ---------------------------------------------------------------- OUTPUT ... EXPIRATION, refusals


def test_expiration_is_recorded_and_the_file_kept(tmp_path: Path) -> None:
    text = (
        f"DECLARE @expiry = DateTime.Now.AddMinutes(5);\n@d = SELECT 1 AS a {ONE_ROW};\n"
        'OUTPUT @d TO "out/e.csv" EXPIRATION @expiry USING Outputters.Csv();\n'
        'OUTPUT @d TO "out/f.csv" ORDER BY a EXPIRATION new DateTime(2030, 1, 1) USING Outputters.Csv();'
    )
    assert run(text, tmp_path) == {"out/e.csv": b"1\r\n", "out/f.csv": b"1\r\n"}
    notes = compile_script(text, base_dir=tmp_path, catalog_dir=tmp_path / "c").notes
    assert f"EXPIRATION of {tmp_path / 'out' / 'e.csv'} is not applied locally (the file is kept)" in notes
    assert len([x for x in notes if x.startswith("EXPIRATION")]) == 2
    e = err(f'@d = SELECT 1 AS a {ONE_ROW};\nOUTPUT @d TO "o.csv" EXPIRATION "soon" USING Outputters.Csv();', tmp_path)
    assert (e.line, e.column, e.construct) == (2, 33, "EXPIRATION")
    assert "takes a DateTime or a TimeSpan, not string" in e.message


def test_rename_is_refused_by_name(tmp_path: Path) -> None:
    e = err("RENAME TABLE a TO b;", tmp_path)
    assert (e.line, e.column, e.construct) == (1, 1, "RENAME TABLE")
    assert "not in the U-SQL language reference" in e.message


def test_spark_refuses_if_and_script_bound_objects() -> None:
    for text in ("IF true THEN END;", "DECLARE VIEW @v AS SELECT 1 AS a FROM (VALUES (1)) AS T(x);"):
        with pytest.raises(UsqlError):
            translate_to_spark(text)


# ---------------------------------------------------------------- constant folding


def expr(text: str) -> n.Expr:
    return Parser(text, "e.usql").expr()


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('"r" + @rank.ToString() + ".csv"', "r7.csv"),
        ('@rank.ToString("D3") + (-@rank).ToString("d2")', "007-07"),
        ("true.ToString() + @rank * 2 + (@rank - 10)", "True14-3"),
        ('"Seat" + "tle".ToUpper() + "ABC".ToLower().Length', "SeatTLE3"),
        ('"ann@contoso".Substring(0, "ann@contoso".IndexOf(\'@\'))', "ann"),
        ('"abc".Substring(1)', "bc"),
        ('@rank >= 7 && !(@rank == 8) && "a" != "b"', True),
        ("@rank < 7 || @none > 1 || @none == null", True),
        ("@rank > 5 ? 1 : 2", 1),
        ("@none < 1", False),
    ],
)
def test_fold(text: str, value: object) -> None:
    assert fold(expr(text), {"rank": 7, "none": None}) == value


@pytest.mark.parametrize(
    "text",
    ['"abc".Substring(2, 5)', '"a" == 1', '"a" < "b"', "1.5.ToString()", '@rank.ToString("N2")', "1 && true"],
)
def test_not_constant(text: str) -> None:
    with pytest.raises(NotConstant):
        fold(expr(text), {"rank": 7})


def test_cli_job_options_set_jobinfo_and_the_adla_step_passes_its_task(tmp_path: Path) -> None:
    from airflow_provider_amlpipe.steps.adla import AdlaScriptStep
    from airflow_provider_amlpipe.steps.runner import StepWorkspace
    from airflow_provider_amlpipe.usql.cli import main

    script = tmp_path / "job.usql"
    script.write_text(
        "@r = SELECT @@JobInfo.Name AS n, @@JobInfo.Id AS i, @@JobInfo.Priority AS p FROM (VALUES (1)) AS T(x);\n"
        'OUTPUT @r TO "out.csv" USING Outputters.Csv();\n'
    )
    job_id = "6f1c2a4e-0d8b-4c55-9a51-2f3c4d5e6f70"
    argv = ["run", str(script), "--base-dir", str(tmp_path), "--job-name", "dag.task", "--job-id", job_id]
    assert main([*argv, "--job-priority", "50"]) == 0
    assert (tmp_path / "out.csv").read_bytes() == f'"dag.task",{job_id},50\r\n'.encode()
    step = AdlaScriptStep("job.usql", str(tmp_path), job_name="dag.task", priority=50)
    ws = StepWorkspace(tmp_path, {}, {}, tmp_path / "m.json", tmp_path / "c.json")
    invoked = step.invocation(ws).argv
    assert invoked[invoked.index("--job-name") + 1] == "dag.task"
    assert invoked[invoked.index("--job-priority") + 1] == "50"
