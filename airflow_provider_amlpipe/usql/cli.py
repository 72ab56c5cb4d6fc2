"""``python -m airflow_provider_amlpipe.usql run|explain|translate script.usql [--param name=value] [--base-dir DIR]
[--map-path PREFIX=DIR]``.

``translate --to spark`` prints the Spark SQL translation; ``translate --to duckdb`` prints what ``explain`` prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from airflow_provider_amlpipe.usql.compiler import compile_script
from airflow_provider_amlpipe.usql.dialects.spark.emitter import translate_to_spark
from airflow_provider_amlpipe.usql.errors import UsqlError
from airflow_provider_amlpipe.usql.jobinfo import JobInfo
from airflow_provider_amlpipe.usql.paths import parse_map_option
from airflow_provider_amlpipe.usql.runner import execute
from airflow_provider_amlpipe.usql.substitute import placeholders, substitute


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m airflow_provider_amlpipe.usql", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    commands = (("run", "run the script locally on DuckDB"), ("explain", "print the DuckDB SQL"),
                ("translate", "print the script translated to another SQL dialect"))  # fmt: skip
    for name, help_ in commands:
        c = sub.add_parser(name, help=help_)
        if name == "translate":
            c.add_argument("--to", choices=("spark", "duckdb"), required=True, help="the target dialect")
        c.add_argument("script", type=Path)
        c.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="value of a DECLARE EXTERNAL variable or of an @@NAME@@ placeholder")  # fmt: skip
        c.add_argument("--base-dir", type=Path, default=None, help="where relative paths resolve (default: cwd)")
        c.add_argument("--map-path", action="append", default=[], metavar="PREFIX=DIR",
                       help="read/write paths under PREFIX (wasb://container@account/, adl://..., /Samples/) "
                       "in the local folder DIR")  # fmt: skip
        if name == "run":
            c.add_argument("--job-name", help="@@JobInfo.Name (default: the script's file name)")
            c.add_argument("--job-id", type=uuid.UUID, help="@@JobInfo.Id (default: a new GUID)")
            c.add_argument("--job-priority", type=int, help="@@JobInfo.Priority (default: null)")
    return p


def _job_info(args: argparse.Namespace, source: str) -> JobInfo:
    """``@@JobInfo`` for a run: the local defaults, with what the caller (the ADLA step) knows better."""
    info = JobInfo.local(source)
    priority = getattr(args, "job_priority", None)
    return dataclasses.replace(
        info,
        name=getattr(args, "job_name", None) or info.name,
        id=getattr(args, "job_id", None) or info.id,
        priority=info.priority if priority is None else priority,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for a bad script or arguments)."""
    args = _parser().parse_args(argv)
    params: dict[str, str] = {}
    for item in args.param:
        if "=" not in item:
            print(f"error: --param {item!r} must be NAME=VALUE", file=sys.stderr)
            return 2
        k, v = item.split("=", 1)
        params[k.lstrip("@")] = v
    path_map: dict[str, str] = {}
    for item in args.map_path:
        try:
            prefix, local = parse_map_option(item)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        path_map[prefix] = local
    try:
        text = args.script.read_text(encoding="utf-8-sig")
    except OSError as e:
        print(f"error: cannot read {args.script}: {e.strerror}", file=sys.stderr)
        return 2
    source = str(args.script)
    try:
        used = placeholders(text)
        if used:
            text = substitute(text, params, source_name=source)
        rest = {k: v for k, v in params.items() if k not in used}
        if args.command == "translate" and args.to == "spark":
            sys.stdout.write(translate_to_spark(text, source_name=source, params=rest))
            return 0
        compiled = compile_script(
            text,
            source_name=source,
            params=rest,
            base_dir=args.base_dir,
            path_map=path_map,
            job_info=_job_info(args, source),
        )
        if args.command in ("explain", "translate"):
            sys.stdout.write(compiled.to_sql())
            return 0
        report = execute(compiled)
    except UsqlError as e:
        print(e.render(), file=sys.stderr)
        return 2
    for path, count in report.rows_written.items():
        print(f"{path}: {count} rows")
    return 0
