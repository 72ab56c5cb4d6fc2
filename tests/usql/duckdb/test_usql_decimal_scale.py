"""Decimal scale per value beyond the golden case ``decimal_scale``: parameters, the 10-digit limit, what is
not tracked, and the SQL a constant scale folds to. Expected values follow .NET's decimal rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.usqltools import run

from airflow_provider_amlpipe.usql import UsqlError, compile_script, run_script

DATA = "@a = SELECT * FROM (VALUES (1, 2.50m), (2, 0.125m)) AS T(id, m);\n"
OUT = '\nOUTPUT @r TO "out/r.csv" USING Outputters.Csv();'


def test_a_declared_external_parameter_keeps_the_digits_passed(tmp_path: Path) -> None:
    text = "DECLARE EXTERNAL @p decimal = 1m;\n" + DATA + "@r = SELECT id, m * @p AS x, @p AS p FROM @a;" + OUT
    run_script(text, params={"p": "2.00"}, base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
    assert (tmp_path / "out" / "r.csv").read_bytes() == b"1,5.0000,2.00\r\n2,0.25000,2.00\r\n"


def test_a_scale_beyond_ten_digits_is_cut_to_ten(tmp_path: Path) -> None:
    # C#: 0.123456m * 0.123456m = 0.015241383936 (scale 12); here the value has 10 digits after the point
    got = run(DATA + "@r = SELECT 0.123456m * 0.123456m AS x, 1m / 3 AS third FROM @a WHERE id == 1;" + OUT, tmp_path)
    assert got == "0.0152413839,0.3333333333\r\n"


def test_decimals_in_a_collection_print_their_shortest_text(tmp_path: Path) -> None:
    # a SqlArray holds bare values: the scale of 1.50m is not kept there (documented)
    script = (DATA + '@b = SELECT id, new SqlArray<decimal>{1.50m, m} AS arr FROM @a WHERE id == 1;\n'
              '@r = SELECT id, x FROM @b CROSS APPLY EXPLODE(arr) AS T(x);' + OUT)  # fmt: skip
    assert run(script, tmp_path) == "1,1.5\r\n1,2.5\r\n"


def test_a_conversion_from_double_has_no_trailing_zeros(tmp_path: Path) -> None:
    got = run(
        DATA + '@r = SELECT (decimal) 2.50 AS d, Convert.ToDecimal("4.10") AS c FROM @a WHERE id == 1;' + OUT, tmp_path
    )
    assert got == "2.5,4.10\r\n"


def test_constant_scales_fold_in_the_sql(tmp_path: Path) -> None:
    compiled = compile_script(DATA + '@r = SELECT (2.50m * 2 + 0.001m).ToString() AS t FROM @a;\n'
                              'OUTPUT @r TO "out/r.csv" USING Outputters.Csv();', base_dir=tmp_path)  # fmt: skip
    sql = "\n".join(st.sql for st in compiled.statements)
    assert "usql_fmt_decimal_scaled(" in sql and ", 3)" in sql  # max(2 + 0, 3), folded to 3


def test_a_decimal_parameter_that_is_no_finite_number_is_refused_before_running(tmp_path: Path) -> None:
    text = "DECLARE EXTERNAL @p decimal = 1m;\n" + DATA + "@r = SELECT id, @p AS p FROM @a;" + OUT
    with pytest.raises(UsqlError, match=r"parameter @p='nan' is not a decimal"):
        compile_script(text, params={"p": "nan"}, base_dir=tmp_path, catalog_dir=tmp_path / "catalog")
