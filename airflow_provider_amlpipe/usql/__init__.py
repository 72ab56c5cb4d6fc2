"""A U-SQL subset compiler that runs Azure Data Lake Analytics scripts locally on DuckDB.

One parser produces an intermediate form (:mod:`.nodes`); emitters turn it into a SQL dialect
(:mod:`.dialects.duckdb.emitter` now). Plain Python: this package never imports Airflow.

Public API: :func:`compile_script`, :func:`run_script`, :func:`substitute`, :class:`UsqlError`, :class:`JobInfo`.
"""

from __future__ import annotations

from airflow_provider_amlpipe.usql.compiler import CompiledScript, compile_script
from airflow_provider_amlpipe.usql.dialects.spark.emitter import translate_to_spark  # noqa: F401
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.runner import RunReport, run_script
from airflow_provider_amlpipe.usql.substitute import placeholders, substitute

__all__ = [
    "CompiledScript",
    "JobInfo",
    "RunReport",
    "UsqlError",
    "compile_script",
    "placeholders",
    "run_script",
    "substitute",
]
