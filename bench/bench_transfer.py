"""Data transfer throughput against the raw clients, side by side in one process run.

- **local -> Azurite**: the transfer engine (``FileTransfer``: parallel files, blocks, per-request MD5
  checked by the service, Content-MD5 compared afterwards, journal) versus azure-storage-blob's own
  ``upload_blob(max_concurrency=4)`` on 8 threads, same files;
- **Azurite -> Azurite**: the engine's service-side copy (verified) versus ``start_copy_from_url``
  on 8 threads polled to completion; both as the engine alone (listing the source itself) and as the
  transfer step runs it (the source listed by the step's fingerprint, untimed here, its time reported
  apart as ``source_listing_s``); the three in turn, forward then reversed;
- **PostgreSQL -> CSV**: ``sql.export`` (``COPY`` with every value quoted, for NULL fidelity) versus
  ``COPY (SELECT * FROM t) TO STDOUT WITH CSV HEADER`` into a file with psycopg2; plus Parquet, and
  MariaDB's streamed export (no raw baseline), for reference.

Each measurement alternates ours and the baseline ``--runs`` times and reports medians. Goals
(issue 13): Blob throughput >= 0.9 x raw, PostgreSQL export >= 0.7 x COPY.
Run: ``python bench/bench_transfer.py [--runs 3] [--rows 500000]`` (needs ``npm ci`` for Azurite and
the local PostgreSQL and MariaDB servers; creates and drops its own databases).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(Path(__file__).parent))

LOG = logging.getLogger("bench-transfer")
MiB = 1024 * 1024


def make_files(root: Path, small: int, large: int) -> int:
    """``small`` files of 1 MiB and ``large`` of 24 MiB of random bytes; their total size."""
    total = 0
    for i in range(small + large):
        size = 24 * MiB if i < large else MiB
        (root / f"f{i:03d}.bin").write_bytes(os.urandom(size))
        total += size
    return total


def timed(fn: Callable[..., Any], *args: Any) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def blob_bench(conn: str, work: Path, runs: int, small: int, large: int) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient

    from airflow_provider_amlpipe.data.azure_blob import AzureBlobDatastore
    from airflow_provider_amlpipe.data.datastore import LocalDatastore
    from airflow_provider_amlpipe.transfer.files import FileEnd, FileTransfer
    from airflow_provider_amlpipe.transfer.journal import Journal

    src_root = work / "lake" / "data"
    src_root.mkdir(parents=True)
    total = make_files(src_root, small, large)
    names = sorted(p.name for p in src_root.iterdir())
    lake = LocalDatastore("lake", work / "lake")
    service = BlobServiceClient.from_connection_string(conn)
    container = service.create_container(f"bench-{uuid.uuid4().hex[:8]}")
    store = AzureBlobDatastore("bench", container)

    def ours_upload(prefix: str) -> None:
        journal = Journal(LocalDatastore("steps", work / f"steps-{prefix}"), prefix)
        FileTransfer(FileEnd(lake, "data", "directory"), FileEnd(store, prefix, "directory"), journal, LOG).run()

    def raw_upload(prefix: str) -> None:
        def one(name: str) -> None:
            with open(src_root / name, "rb") as handle:
                container.upload_blob(f"{prefix}/{name}", handle, overwrite=True, max_concurrency=4)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, names))

    def ours_copy(src: str, dst: str) -> None:
        FileTransfer(FileEnd(store, src, "directory"), FileEnd(store, dst, "directory"), None, LOG).run()

    def ours_copy_listed(src: str, dst: str, listing: dict[str, Any]) -> None:
        """What the transfer step does: its fingerprint listed the source, and the copy uses that listing."""
        source, destination = FileEnd(store, src, "directory"), FileEnd(store, dst, "directory")
        FileTransfer(source, destination, None, LOG, listed=listing).run()

    def raw_copy(src: str, dst: str) -> None:
        def one(name: str) -> None:
            target = container.get_blob_client(f"{dst}/{name}")
            status = target.start_copy_from_url(container.get_blob_client(f"{src}/{name}").url)["copy_status"]
            while status == "pending":
                time.sleep(0.05)
                status = target.get_blob_properties().copy.status

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, names))

    up_ours, up_raw, cp_ours, cp_raw, cp_listed, listings = [], [], [], [], [], []
    for run in range(runs):
        up_raw.append(timed(raw_upload, f"raw-{run}"))
        up_ours.append(timed(ours_upload, f"ours-{run}"))
        started = time.perf_counter()
        listing = store.list_stats(f"ours-{run}")  # the step's fingerprint does this, before its transfer
        listings.append(time.perf_counter() - started)
        copies: list[tuple[list[float], Callable[..., None], tuple[Any, ...]]] = [
            (cp_ours, ours_copy, (f"ours-{run}", f"ours-copy-{run}")),
            (cp_listed, ours_copy_listed, (f"ours-{run}", f"ours-listed-copy-{run}", listing)),
            (cp_raw, raw_copy, (f"raw-{run}", f"raw-copy-{run}")),
        ]
        for times, copy, copy_args in copies if run % 2 == 0 else reversed(copies):  # neither always goes first
            times.append(timed(copy, *copy_args))
    container.delete_container()

    def rates(ours: list[float], raw: list[float]) -> dict[str, Any]:
        o, r = statistics.median(ours), statistics.median(raw)
        return {
            "ours_s": round(o, 3),
            "raw_s": round(r, 3),
            "ours_MiB_per_s": round(total / MiB / o, 1),
            "raw_MiB_per_s": round(total / MiB / r, 1),
            "throughput_ratio": round(r / o, 3),
        }

    return {
        "files": len(names),
        "bytes": total,
        "local_to_azurite": rates(up_ours, up_raw),
        "azurite_to_azurite": rates(cp_ours, cp_raw),
        # The transfer step's copy: the source listed by its fingerprint (timed apart: source_listing_s).
        "azurite_to_azurite_step_listed": rates(cp_listed, cp_raw),
        "source_listing_s": round(statistics.median(listings), 4),
    }


def sql_bench(work: Path, runs: int, rows: int) -> dict[str, Any]:
    import sqlalchemy as sa
    from support.sqldbs import MYSQL_SERVER, PG_SERVER, _database

    from airflow_provider_amlpipe.transfer import sql
    from airflow_provider_amlpipe.transfer.refs import SqlDataReference

    result: dict[str, Any] = {"rows": rows}
    cancel = threading.Event()
    for server, admin in ((PG_SERVER, "postgres"), (MYSQL_SERVER, None)):
        gen = _database(server, admin, " WITH (FORCE)" if admin else "")
        db = next(gen)
        try:
            with db.engine.begin() as conn:
                conn.exec_driver_sql(
                    "CREATE TABLE t (id INTEGER PRIMARY KEY, name VARCHAR(60), amount NUMERIC(12, 2), day DATE,"
                    " at TIMESTAMP NULL)"
                )
                batch = 20_000
                for start in range(0, rows, batch):
                    conn.execute(
                        sa.text("INSERT INTO t VALUES (:i, :n, :a, :d, :t)"),
                        [
                            {"i": i, "n": f"name {i} ünïcode", "a": i / 100, "d": "2024-01-02", "t": "2024-01-02 03:04"}
                            for i in range(start, min(start + batch, rows))
                        ],
                    )
            ref = SqlDataReference(db.connection, sql_table="t")
            key = db.dialect
            csv_args = (db, ref, work / f"{key}.csv", "csv", LOG, cancel)
            pq_args = (db, ref, work / f"{key}.parquet", "parquet", LOG, cancel)
            ours_csv = [timed(sql.export, *csv_args) for _ in range(runs)]
            ours_pq = [timed(sql.export, *pq_args) for _ in range(runs)]
            entry: dict[str, Any] = {
                "csv_rows_per_s": round(rows / statistics.median(ours_csv)),
                "parquet_rows_per_s": round(rows / statistics.median(ours_pq)),
            }
            if key == "postgresql":
                raw_times = []
                for _ in range(runs):
                    raw_times.append(timed(copy_out, db, work / "raw.csv"))
                    ours_csv.append(timed(sql.export, *csv_args))
                entry["copy_rows_per_s"] = round(rows / statistics.median(raw_times))
                entry["csv_rows_per_s"] = round(rows / statistics.median(ours_csv))
                entry["csv_ratio_vs_copy"] = round(entry["csv_rows_per_s"] / entry["copy_rows_per_s"], 3)
            result[key] = entry
        finally:
            gen.close()
    return result


def copy_out(db: Any, path: Path) -> None:
    """The baseline: PostgreSQL's own CSV export, straight into a file."""
    raw = db.engine.raw_connection()
    try:
        with open(path, "w", encoding="utf-8") as handle:
            raw.cursor().copy_expert("COPY (SELECT * FROM t) TO STDOUT WITH CSV HEADER", handle)
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=48, help="1 MiB files")
    parser.add_argument("--large", type=int, default=3, help="24 MiB files")
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--out", type=Path, help="results file (default bench/results/transfer-<date>.json)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from _machine import cpu_model
    from support.azurite_server import running_azurite

    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cpu": cpu_model(),
        "nproc": os.cpu_count(),
        "runs": args.runs,
    }
    with tempfile.TemporaryDirectory(prefix="amlpipe-bench-transfer-") as tmp:
        work = Path(tmp)
        with running_azurite() as conn:
            result["blob"] = blob_bench(conn, work, args.runs, args.small, args.large)
        result["sql"] = sql_bench(work, args.runs, args.rows)
    print(json.dumps(result, indent=2))
    out = args.out or Path(__file__).parent / "results" / f"transfer-{result['date']}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
