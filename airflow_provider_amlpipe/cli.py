"""The ``amlpipe`` command: list datasets and versions, resolve one to a path, show a run.

    amlpipe datasets list                      [--datastore CONN | --path DIR]
    amlpipe datasets versions NAME
    amlpipe datasets show NAME [--version N|latest]
    amlpipe datasets resolve NAME [--version N|latest] [--download DIR]
    amlpipe runs show DAG_ID RUN_ID
    amlpipe gc                                 [--datastore CONN | --path DIR] [--grace-hours H] [--dry-run]
    amlpipe convert PIPELINE.py|.ipynb         [-o DAG.py] [--dag-id ID]

``--datastore`` names an Airflow connection (default ``amlpipe_default``); ``--path`` opens a local
datastore folder directly, without Airflow. ``convert`` reads an AML SDK v1 pipeline script statically
and writes a DAG; its exit code is 0 when the DAG runs as is, 3 when TODOs remain, 2 for unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from airflow_provider_amlpipe.data import objects
from airflow_provider_amlpipe.data.datastore import Datastore, LocalDatastore
from airflow_provider_amlpipe.data.registry import DatasetRegistry
from airflow_provider_amlpipe.errors import AmlPipeError


def _datastore(args: argparse.Namespace) -> Datastore:
    if args.path:
        return LocalDatastore("local", args.path)
    from airflow_provider_amlpipe.hooks.datastore import AmlDatastoreHook

    return AmlDatastoreHook(args.datastore, field="--datastore").get_conn()


def _version(text: str) -> int | str:
    return text if text == "latest" else int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="amlpipe", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    groups = parser.add_subparsers(dest="group", required=True)
    datasets = groups.add_parser("datasets", help="named, versioned datasets")
    commands = datasets.add_subparsers(dest="command", required=True)
    for name in ("list", "versions", "show", "resolve"):
        command = commands.add_parser(name)
        source = command.add_mutually_exclusive_group()
        source.add_argument("--datastore", default="amlpipe_default", help="datastore connection id")
        source.add_argument("--path", help="a local datastore folder (no Airflow needed)")
        if name != "list":
            command.add_argument("name")
        if name in ("show", "resolve"):
            command.add_argument("--version", type=_version, default="latest")
        if name == "resolve":
            command.add_argument("--download", type=Path, help="copy the files here (remote stores need it)")
    gc = groups.add_parser(
        "gc", help="finish abandoned commits; remove objects no version names and interrupted uploads"
    )
    gc_source = gc.add_mutually_exclusive_group()
    gc_source.add_argument("--datastore", default="amlpipe_default", help="datastore connection id")
    gc_source.add_argument("--path", help="a local datastore folder (no Airflow needed)")
    gc.add_argument(
        "--grace-hours",
        type=float,
        default=24.0,
        help="leave objects written in the last H hours alone: commits running now may still name them (default 24)",
    )
    gc.add_argument("--dry-run", action="store_true", help="report what would be removed, remove nothing")
    convert = groups.add_parser("convert", help="an AML SDK v1 pipeline script or notebook -> an Airflow DAG file")
    convert.add_argument("input", type=Path, help="the .py script or .ipynb notebook (read, never executed)")
    convert.add_argument("-o", "--output", type=Path, help="the DAG file to write (default: print it)")
    convert.add_argument("--dag-id", help="the DAG id (default: the input's file name)")
    runs = groups.add_parser("runs", help="DAG runs (needs the Airflow metadata database)")
    run_commands = runs.add_subparsers(dest="command", required=True)
    show = run_commands.add_parser("show", help="what each step of a run did")
    show.add_argument("dag_id")
    show.add_argument("run_id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.group == "runs":
            from airflow_provider_amlpipe.shell.run_summary import format_table

            print(format_table(args.dag_id, args.run_id))
            return 0
        if args.group == "gc":
            return _gc(args)
        if args.group == "convert":
            return _convert(args)
        registry = DatasetRegistry(_datastore(args))
        if args.command == "list":
            for name in registry.list_datasets():
                versions = registry.list_versions(name)
                print(f"{name}\tlatest v{versions[-1]['version']}\t{len(versions)} version(s)")
        elif args.command == "versions":
            registry.get(args.name, "latest", field="name")  # a clear error for an unknown name
            for doc in registry.list_versions(args.name):
                producer = doc.get("producer", {})
                print(
                    f"v{doc['version']}\t{doc['created_at']}\t{doc['files']} file(s)\t{doc['size']} bytes\t"
                    f"{doc['digest'][:12]}\t{producer.get('dag_id', '-')}.{producer.get('task_id', '-')}"
                )
        elif args.command == "show":
            print(json.dumps(registry.get(args.name, args.version, field="name").to_dict(), indent=2))
        elif args.command == "resolve":
            ref = registry.get(args.name, args.version, field="name")
            store = registry.store
            if args.download is None and store.local_path(ref.path) is None:
                print(store.url(ref.path))
            else:
                print(objects.materialize(store, ref.digest, args.download))
    except AmlPipeError as exc:
        print(f"amlpipe: {exc}", file=sys.stderr)
        return 2
    return 0


#: ``amlpipe convert`` exit codes: the DAG runs as is / TODOs remain (unreadable input is 2, as every error).
CONVERTED, CONVERTED_WITH_TODOS = 0, 3


def check_recurrence(kwargs: dict[str, Any]) -> str | None:
    """Why the converted DAG's ``ScheduleRecurrence(**kwargs)`` would be refused, or None."""
    from airflow_provider_amlpipe.schedules import ScheduleRecurrence, recurrence_timetable

    try:
        recurrence_timetable(ScheduleRecurrence(**kwargs))
    except (AmlPipeError, TypeError) as exc:
        return str(exc)
    return None


def _convert(args: argparse.Namespace) -> int:
    from airflow_provider_amlpipe.convert import convert_file

    result = convert_file(args.input, args.output, args.dag_id, check_recurrence)
    if args.output is None:
        print(result.text, end="")
    for line in result.report():
        print(line, file=sys.stderr)
    if result.connections:
        print("Airflow connections to create:", file=sys.stderr)
        for conn in result.connections:
            print(f"  {conn.conn_id}: {conn.conn_type} (replaces {conn.replaces})", file=sys.stderr)
    todos = len(result.todos)
    target = args.output or "stdout"
    print(f"amlpipe convert: wrote {target}; {todos} TODO(s), {len(result.notes)} note(s)", file=sys.stderr)
    return CONVERTED_WITH_TODOS if todos else CONVERTED


def _gc(args: argparse.Namespace) -> int:
    import logging

    from airflow_provider_amlpipe.hashing import Hasher
    from airflow_provider_amlpipe.reuse.gc import collect_garbage

    if args.grace_hours < 0:
        print("amlpipe: --grace-hours: must not be negative", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = collect_garbage(
        _datastore(args),
        Hasher(),
        logging.getLogger("amlpipe.gc"),
        grace_seconds=args.grace_hours * 3600,
        dry_run=args.dry_run,
    )
    print(("would have: " if args.dry_run else "") + report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
