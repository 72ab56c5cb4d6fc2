"""Benchmark the U-SQL compiler on DuckDB against hand-written DuckDB SQL for the same query.

Usage::

    python bench/bench_usql.py [--dir D] [--gb 1.0] [--repeats 3] [--keep] [--no-profile]

The script generates (with DuckDB's own ``COPY`` from a generated range, in a temp dir outside
the repository) a CSV of at least ``--gb`` GB (10^9 bytes) of orders with realistic columns
(ints, strings, doubles, timestamps, dates, empty fields, quoted fields), warms the OS page cache
by reading it once, then times, side by side on the same file and in the same run:

* ``compiled``: a U-SQL script (EXTRACT -> WHERE -> GROUP BY -> OUTPUT with ``Outputters.Csv``)
  run with :func:`airflow_provider_amlpipe.usql.run_script`;
* ``handwritten``: the same query written by hand as idiomatic DuckDB SQL (typed ``read_csv``,
  ``COPY ... TO`` with options that give the outputter's format);
* ``handwritten_again``: the baseline once more, to estimate run-to-run noise.

Every measurement runs in a fresh child process, so its peak RSS (``wait4``'s ``ru_maxrss``) is
its own; it is repeated (3 times by default, alternating order) and medians are reported, as a
table on stdout and as JSON in ``bench/results/usql-<date>.json``. Every output is checked
against the first compiled output (bytes, or row by row with doubles compared to 1e-9 relative,
since parallel float sums are not bit-reproducible); the benchmark fails if they differ.
Unless ``--no-profile``, each query then runs once more, untimed, with DuckDB's profiler on, and
the operator timings go into the JSON. Only the *ratio* compiled / hand-written carries over to
other machines.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _machine import cpu_model, host_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

GB = 10**9
MIB = 1 << 20
DATA_VERSION = 1
FLOAT_REL_TOL = 1e-9
MEASUREMENTS = ("compiled", "handwritten", "handwritten_again")
CHILD_KINDS = ("compiled", "handwritten", "import_only")

#: One row of orders per ``i``: two 64-bit hashes of ``i`` feed every column, so generation is
#: deterministic and cheap. About 2% of regions, 3% of quantities, 60% of discounts, 25% of ship
#: dates and 50% of comments are empty; 10% of comments are a quoted empty string ``""`` and 20%
#: need quoting (a comma, or inner quotes).
GENERATE_SQL = """
COPY (
SELECT
  i AS order_id,
  CAST(a % 200000 AS INTEGER) AS customer_id,
  CASE WHEN (a >> 18) % 50 = 0 THEN NULL
       ELSE ['North', 'South', 'East', 'West', 'Central', 'North-East', 'South-West', 'Overseas']
            [1 + CAST((a >> 24) % 8 AS INTEGER)] END AS region,
  'SKU-' || lpad(CAST((a >> 27) % 120 AS VARCHAR), 4, '0') || ' '
    || ['Widget', 'Gadget', 'Sprocket', 'Gizmo', 'Doohickey', 'Bracket'][1 + CAST((a >> 34) % 6 AS INTEGER)] AS product,
  CASE WHEN (a >> 37) % 33 = 0 THEN NULL ELSE CAST((a >> 43) % 20 AS INTEGER) - 1 END AS quantity,
  round(((a >> 48) % 50000) / 100 + 0.99, 2) AS unit_price,
  CASE WHEN b % 5 < 3 THEN NULL ELSE round(((b >> 3) % 3000) / 10000, 4) END AS discount,
  TIMESTAMP '2019-01-01' + to_seconds(CAST((b >> 15) % 189216000 AS BIGINT)) AS order_ts,
  CASE WHEN (b >> 43) % 4 = 0 THEN NULL
       ELSE CAST(TIMESTAMP '2019-01-01' + to_seconds(CAST((b >> 15) % 189216000 AS BIGINT))
                 + to_days(CAST(1 + (b >> 45) % 14 AS INTEGER)) AS DATE) END AS ship_date,
  ['shipped', 'shipped', 'shipped', 'pending', 'cancelled', 'returned'][1 + CAST((b >> 49) % 6 AS INTEGER)] AS status,
  CASE (b >> 52) % 10 WHEN 0 THEN 'leave at door, ring twice' WHEN 1 THEN 'gift wrap "premium"' WHEN 2 THEN ''
       WHEN 3 THEN 'call before delivery' WHEN 4 THEN 'fragile' END AS comment
FROM (SELECT i, hash(i, 'a') AS a, hash(i, 'b') AS b FROM range({start}, {stop}) AS t(i))
) TO {path} (FORMAT csv, HEADER {header})
"""

#: The U-SQL script: every column extracted with its U-SQL type, a filter, an aggregation, an output.
USQL_SCRIPT = """\
// Shipped orders since 2020: units, gross revenue, average discount, last ship date
// per region, product and year.
DECLARE EXTERNAL @input string = "orders.csv";
DECLARE EXTERNAL @output string = "revenue.csv";
DECLARE @since DateTime = new DateTime(2020, 1, 1);

@orders =
    EXTRACT order_id long,
            customer_id int,
            region string,
            product string,
            quantity int?,
            unit_price double,
            discount double?,
            order_ts DateTime,
            ship_date DateTime?,
            status string,
            comment string
    FROM @input
    USING Extractors.Csv(skipFirstNRows: 1);

@shipped =
    SELECT region, product, order_ts.Year AS year, quantity, unit_price, discount, ship_date
    FROM @orders
    WHERE status == "shipped" && order_ts >= @since && quantity > 0;

@revenue =
    SELECT region,
           product,
           year,
           COUNT(*) AS orders,
           SUM(quantity) AS units,
           SUM(unit_price * quantity) AS gross,
           AVG(discount) AS avg_discount,
           MAX(ship_date) AS last_ship
    FROM @shipped
    GROUP BY region, product, year;

OUTPUT @revenue
TO @output
ORDER BY region, product, year
USING Outputters.Csv(outputHeader: true);
"""

#: The same query as a DuckDB user would write it: typed columns in ``read_csv``, COPY options for
#: the outputter's format (quoted strings, CRLF, round-trip "O" DateTime) and U-SQL's ORDER BY (nulls last).
HANDWRITTEN_SQL = """\
COPY (
    SELECT region, product, year(order_ts) AS year,
           count(*) AS orders, sum(quantity) AS units, sum(unit_price * quantity) AS gross,
           avg(discount) AS avg_discount, max(ship_date) AS last_ship
    FROM read_csv({input}, header = true, allow_quoted_nulls = false,
                  columns = {{'order_id': 'BIGINT', 'customer_id': 'INTEGER', 'region': 'VARCHAR',
                             'product': 'VARCHAR', 'quantity': 'INTEGER', 'unit_price': 'DOUBLE',
                             'discount': 'DOUBLE', 'order_ts': 'TIMESTAMP', 'ship_date': 'TIMESTAMP',
                             'status': 'VARCHAR', 'comment': 'VARCHAR'}})
    WHERE status = 'shipped' AND order_ts >= TIMESTAMP '2020-01-01' AND quantity > 0
    GROUP BY ALL
    ORDER BY region NULLS LAST, product, year
) TO {output} (FORMAT csv, HEADER, FORCE_QUOTE (region, product), NEW_LINE '\\r\\n',
               TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%f0')
"""


def sql_str(value: str | Path) -> str:
    """A DuckDB string literal."""
    return "'" + str(value).replace("'", "''") + "'"


# ------------------------------------------------------------------ child processes


def _profile_tree(node: dict[str, Any], depth: int, out: list[dict[str, Any]]) -> None:
    """Flatten DuckDB's JSON profile into (depth, operator, CPU seconds, rows, detail) rows.

    Handles DuckDB 2.0's layout (``operator`` list; ``type``, ``timing``, ``intermediate_rows``)
    and 1.x's (``children``; ``operator_name``, ``operator_timing``, ``operator_cardinality``).
    """
    name = node.get("type") or node.get("operator_name") or ""
    if name and "operator" not in node:
        extra = node.get("extra_info") or {}
        detail = ""
        if isinstance(extra, dict):
            parts = (extra.get(k) for k in ("Projections", "Expression", "Aggregates", "Function"))
            detail = " ".join(str(x) for x in parts if x)
        rows = node.get("intermediate_rows", node.get("operator_cardinality")) or 0
        out.append(
            {
                "depth": depth,
                "operator": str(name).strip(),
                "cpu_s": round(float(node.get("timing", node.get("operator_timing")) or 0.0), 3),
                "rows": int(rows),
                "detail": detail[:300],
            }
        )
        depth += 1
    for child in node.get("operator") or node.get("children") or []:
        _profile_tree(child, depth, out)


def child_main(kind: str, csv_path: Path, out_path: Path, profile: Path | None) -> int:
    """Run one measurement inside this (fresh) process and print a JSON line about it."""
    started = time.perf_counter()
    import duckdb

    from airflow_provider_amlpipe.usql import compile_script, run_script

    imported = time.perf_counter()
    report: dict[str, Any] = {"kind": kind, "import_s": imported - started}
    params = {"input": str(csv_path), "output": str(out_path)}
    if profile is None:
        if kind == "compiled":
            run = run_script(USQL_SCRIPT, source_name="bench.usql", params=params)
            report["rows_written"] = sum(run.rows_written.values())
        elif kind == "handwritten":
            con = duckdb.connect(":memory:")
            con.execute("SET enable_progress_bar = false")
            result = con.execute(HANDWRITTEN_SQL.format(input=sql_str(csv_path), output=sql_str(out_path)))
            report["rows_written"] = int(result.fetchall()[0][0])
            con.close()
        else:  # import_only: the floor of every child's RSS
            con = duckdb.connect(":memory:")
            con.close()
    else:
        # Untimed: the final COPY with DuckDB's profiler on (the views are set up first, as the runner does).
        con = duckdb.connect(":memory:")
        con.execute("SET enable_progress_bar = false")
        if kind == "compiled":
            compiled = compile_script(USQL_SCRIPT, source_name="bench.usql", params=params)
            con.execute(compiled.prelude)
            final = ""
            for st in compiled.statements:
                if st.kind == "view":
                    con.execute(st.sql)
                elif st.kind == "output":
                    final = st.sql
            report["sql"] = compiled.to_sql()
        else:
            final = HANDWRITTEN_SQL.format(input=sql_str(csv_path), output=sql_str(out_path))
            report["sql"] = final
        con.execute("PRAGMA enable_profiling = 'json'")
        con.execute(f"PRAGMA profiling_output = {sql_str(profile)}")
        con.execute(final)
        con.close()
    report["query_s"] = time.perf_counter() - imported
    report["duckdb"] = duckdb.__version__
    print(json.dumps(report))
    return 0


@dataclass
class ChildRun:
    """One child process: wall clock (spawn to reap), in-child query time, CPU, peak RSS, interference."""

    wall_s: float
    query_s: float
    import_s: float
    cpu_s: float
    maxrss_mib: float
    other_cpu_s: float
    steal_s: float
    rows_written: int
    report: dict[str, Any]


def run_child(kind: str, csv_path: Path, out_path: Path, workdir: Path, profile: Path | None = None) -> ChildRun:
    """Run ``kind`` in a fresh Python process; ``wait4`` gives that process' own CPU and peak RSS."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind]
    cmd += ["--csv", str(csv_path), "--out", str(out_path)]
    if profile is not None:
        cmd += ["--profile-to", str(profile)]
    log = workdir / "child.out"
    busy0, steal0 = host_cpu()
    start = time.perf_counter()
    with open(log, "wb") as stdout:
        proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, cwd=workdir)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
    wall = time.perf_counter() - start
    busy1, steal1 = host_cpu()
    if proc.returncode:
        raise SystemExit(f"child {kind} failed ({proc.returncode}):\n{err.decode(errors='replace')}")
    report = json.loads(log.read_text().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(
        wall_s=wall,
        query_s=float(report["query_s"]),
        import_s=float(report["import_s"]),
        cpu_s=cpu,
        maxrss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        other_cpu_s=max(0.0, busy1 - busy0 - cpu),
        steal_s=steal1 - steal0,
        rows_written=int(report.get("rows_written", 0)),
        report=report,
    )


# ------------------------------------------------------------------ data


@dataclass
class DataInfo:
    """The generated (or reused) CSV."""

    path: Path
    rows: int
    size_bytes: int
    generated: bool
    generation_s: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "path": str(self.path),
            "rows": self.rows,
            "size_bytes": self.size_bytes,
            "size_gb": round(self.size_bytes / GB, 3),
            "generated_this_run": self.generated,
            "generation_s": round(self.generation_s, 2),
        }


def generate(path: Path, rows: int) -> None:
    """Write ``rows`` orders (plus a header line) to ``path`` with DuckDB's COPY."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(GENERATE_SQL.format(start=0, stop=rows, path=sql_str(path), header="true"))
    finally:
        con.close()


def bytes_per_row(workdir: Path, around: int) -> float:
    """Average CSV bytes per row, measured on 200,000 rows numbered like the rows near ``around``."""
    import duckdb

    probe = workdir / "probe.csv"
    n = 200_000
    start = max(0, around - n // 2)
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(GENERATE_SQL.format(start=start, stop=start + n, path=sql_str(probe), header="false"))
    finally:
        con.close()
    size = probe.stat().st_size
    probe.unlink()
    return size / n


def ensure_data(workdir: Path, target_bytes: int) -> DataInfo:
    """Reuse ``workdir/orders.csv`` if its marker matches, else generate at least ``target_bytes``."""
    path = workdir / "orders.csv"
    marker = workdir / "orders.json"
    existing = json.loads(marker.read_text()) if marker.is_file() else None
    wanted = {"version": DATA_VERSION, "target_bytes": target_bytes}
    if (
        existing
        and {k: existing.get(k) for k in wanted} == wanted
        and path.is_file()
        and path.stat().st_size == existing["size_bytes"]
    ):
        return DataInfo(path, existing["rows"], existing["size_bytes"], False, 0.0)
    started = time.perf_counter()
    marker.unlink(missing_ok=True)
    rows = math.ceil(target_bytes / bytes_per_row(workdir, int(target_bytes / 100)) * 1.002)
    generate(path, rows)
    while path.stat().st_size < target_bytes:  # the estimate came out short: add 1% and redo
        rows = math.ceil(rows * 1.01)
        generate(path, rows)
    os.sync()  # so that writeback does not run during the timed measurements
    size = path.stat().st_size
    marker.write_text(json.dumps({"version": DATA_VERSION, "target_bytes": target_bytes, "rows": rows,
                                  "size_bytes": size}))  # fmt: skip
    return DataInfo(path, rows, size, True, time.perf_counter() - started)


def warm_page_cache(path: Path) -> float:
    """Read the file once so every timed run finds it in the OS page cache; return seconds."""
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as handle:
        while handle.read(8 * MIB):
            pass
    return time.perf_counter() - start


# ------------------------------------------------------------------ output check


@dataclass
class Comparison:
    """How an output compares with the reference output."""

    bytes_identical: bool
    rows: int
    max_rel_diff: float
    problems: list[str] = field(default_factory=list)


def _as_float(text: str) -> float | None:
    """The field as a number, or None if it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


def compare_outputs(reference: Path, candidate: Path) -> Comparison:
    """Equal bytes, or equal rows after parsing: same fields, doubles within ``FLOAT_REL_TOL``.

    Both files must use CRLF row delimiters; header names are compared unquoted (U-SQL quotes
    them, DuckDB's COPY quotes only the FORCE_QUOTE columns' names).
    """
    ref_bytes, cand_bytes = reference.read_bytes(), candidate.read_bytes()
    ref_rows = list(csv.reader(io.StringIO(ref_bytes.decode("utf-8"), newline="")))
    if ref_bytes == cand_bytes:
        return Comparison(True, len(ref_rows) - 1, 0.0)
    problems: list[str] = []
    for name, data in (("reference", ref_bytes), ("candidate", cand_bytes)):
        if data.count(b"\n") != data.count(b"\r\n"):
            problems.append(f"{name} has row delimiters other than CRLF")
    cand_rows = list(csv.reader(io.StringIO(cand_bytes.decode("utf-8"), newline="")))
    if len(ref_rows) != len(cand_rows):
        problems.append(f"{len(ref_rows)} lines in the reference, {len(cand_rows)} in the candidate")
    max_rel = 0.0
    for line, (a_row, b_row) in enumerate(zip(ref_rows, cand_rows, strict=False), start=1):
        if len(a_row) != len(b_row):
            problems.append(f"line {line}: {len(a_row)} fields against {len(b_row)}")
            continue
        for a, b in zip(a_row, b_row, strict=True):
            if a == b:
                continue
            fa, fb = _as_float(a), _as_float(b)
            if fa is None or fb is None:
                problems.append(f"line {line}: {a!r} != {b!r}")
                continue
            rel = abs(fa - fb) / max(abs(fa), abs(fb), 1e-300)
            max_rel = max(max_rel, rel)
            if rel > FLOAT_REL_TOL:
                problems.append(f"line {line}: {a} != {b} (relative difference {rel:.2e})")
    return Comparison(False, len(ref_rows) - 1, max_rel, problems[:20])


# ------------------------------------------------------------------ benchmark


def run_benchmark(data: DataInfo, workdir: Path, repeats: int, profile: bool) -> dict[str, Any]:
    """Warm the page cache, then run every measurement ``repeats`` times, alternating order."""
    outdir = workdir / "out"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    warm_s = warm_page_cache(data.path)
    floor = run_child("import_only", data.path, outdir / "unused.csv", workdir)

    reference = outdir / "reference.csv"
    runs: dict[str, list[ChildRun]] = {name: [] for name in MEASUREMENTS}
    checks: dict[str, list[dict[str, Any]]] = {name: [] for name in MEASUREMENTS}
    orders: list[list[str]] = []
    for rep in range(repeats):
        order = list(MEASUREMENTS) if rep % 2 == 0 else list(reversed(MEASUREMENTS))
        if rep == 0:
            order = ["compiled", *(m for m in MEASUREMENTS if m != "compiled")]  # the reference comes first
        orders.append(order)
        for name in order:
            kind = "handwritten" if name.startswith("handwritten") else "compiled"
            target = outdir / f"{name}-{rep}.csv"
            run = run_child(kind, data.path, target, workdir)
            runs[name].append(run)
            if not reference.exists():
                target.rename(reference)
                target = reference
            cmp = compare_outputs(reference, target)
            checks[name].append({"bytes_identical": cmp.bytes_identical, "max_rel_diff": cmp.max_rel_diff})
            if cmp.problems:
                raise SystemExit(f"{name} (repetition {rep}) differs from the compiled script's output:\n  "
                                 + "\n  ".join(cmp.problems))  # fmt: skip
            if run.rows_written != cmp.rows:
                raise SystemExit(f"{name} reports {run.rows_written} rows written, the file has {cmp.rows}")
            if target != reference:
                target.unlink()
            print(f"  rep {rep} {name:<18} {run.query_s:7.2f} s query, {run.wall_s:7.2f} s process, "
                  f"{run.maxrss_mib:7.1f} MiB peak RSS, other CPU {run.other_cpu_s:5.1f} s", flush=True)  # fmt: skip

    base = statistics.median(r.query_s for r in runs["handwritten"])
    base_min = min(r.query_s for r in runs["handwritten"])
    base_wall = statistics.median(r.wall_s for r in runs["handwritten"])
    base_cpu = statistics.median(r.cpu_s for r in runs["handwritten"])
    results: dict[str, Any] = {}
    for name, rs in runs.items():
        query = [r.query_s for r in rs]
        med = statistics.median(query)
        results[name] = {
            "query_runs_s": [round(x, 3) for x in query],
            "median_query_s": round(med, 3),
            "min_query_s": round(min(query), 3),
            "max_query_s": round(max(query), 3),
            "median_process_wall_s": round(statistics.median(r.wall_s for r in rs), 3),
            "median_import_s": round(statistics.median(r.import_s for r in rs), 3),
            "median_cpu_s": round(statistics.median(r.cpu_s for r in rs), 2),
            "peak_rss_mib": [round(r.maxrss_mib, 1) for r in rs],
            "median_peak_rss_mib": round(statistics.median(r.maxrss_mib for r in rs), 1),
            "mb_per_s": round(data.size_bytes / 1e6 / med, 1),
            "other_cpu_s": [round(r.other_cpu_s, 2) for r in rs],
            "steal_s": [round(r.steal_s, 2) for r in rs],
            "rows_written": rs[0].rows_written,
            "output_checks": checks[name],
            "time_ratio_vs_handwritten": round(med / base, 4),
            "min_time_ratio_vs_handwritten": round(min(query) / base_min, 4),
            "process_wall_ratio_vs_handwritten": round(statistics.median(r.wall_s for r in rs) / base_wall, 4),
            "cpu_ratio_vs_handwritten": round(statistics.median(r.cpu_s for r in rs) / base_cpu, 4),
        }
    bench: dict[str, Any] = {
        "warmup_read_s": round(warm_s, 2),
        "orders": orders,
        "import_only_peak_rss_mib": round(floor.maxrss_mib, 1),
        "import_only_process_wall_s": round(floor.wall_s, 3),
        "total_other_cpu_s": round(sum(r.other_cpu_s for rs in runs.values() for r in rs), 2),
        "total_steal_s": round(sum(r.steal_s for rs in runs.values() for r in rs), 2),
        "measurements": results,
        "outputs_verified": True,
        "duckdb": runs["compiled"][0].report.get("duckdb", ""),
    }
    if profile:
        bench["profile"] = {}
        for kind in ("compiled", "handwritten"):
            prof = workdir / f"profile-{kind}.json"
            run = run_child(kind, data.path, outdir / f"profile-{kind}.csv", workdir, profile=prof)
            operators: list[dict[str, Any]] = []
            tree = json.loads(prof.read_text())
            _profile_tree(tree, 0, operators)
            bench["profile"][kind] = {
                "query_s_with_profiler": round(run.query_s, 3),
                "operators": operators,
                "sql": run.report.get("sql", ""),
            }
            prof.unlink()
    shutil.rmtree(outdir, ignore_errors=True)
    return bench


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    mem_total = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = int(line.split()[1]) // 1024
    except OSError:
        pass
    return {
        "nproc": os.cpu_count() or 1,
        "cpu_model": cpu_model(),
        "mem_total_mib": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }


def print_table(data: DataInfo, bench: dict[str, Any], machine: dict[str, Any]) -> None:
    """Human-readable summary of the medians."""
    print(f"\ndata: {data.path.name}, {data.rows:,} rows, {data.size_bytes / GB:.3f} GB, page cache warm")
    print(
        f"machine: nproc={machine['nproc']}, {machine['cpu_model']}, Python {machine['python']}, "
        f"DuckDB {bench['duckdb']} (default threads = nproc)"
    )
    print(f"peak RSS of a child that only imports duckdb + the compiler: {bench['import_only_peak_rss_mib']:.0f} MiB\n")
    header = f"{'measurement':<19}{'median s':>10}{'min s':>8}{'max s':>8}{'proc s':>8}{'cpu s':>8}"
    header += f"{'MB/s':>8}{'RSS MiB':>9}{'t/hand':>8}{'min/min':>9}{'cpu/hand':>10}"
    print(header)
    print("-" * len(header))
    for name in MEASUREMENTS:
        m = bench["measurements"][name]
        print(
            f"{name:<19}{m['median_query_s']:>10.2f}{m['min_query_s']:>8.2f}{m['max_query_s']:>8.2f}"
            f"{m['median_process_wall_s']:>8.2f}{m['median_cpu_s']:>8.1f}{m['mb_per_s']:>8.0f}"
            f"{m['median_peak_rss_mib']:>9.0f}{m['time_ratio_vs_handwritten']:>8.3f}"
            f"{m['min_time_ratio_vs_handwritten']:>9.3f}{m['cpu_ratio_vs_handwritten']:>10.3f}"
        )
    checks = bench["measurements"]["handwritten"]["output_checks"]
    print(
        f"\noutputs: {bench['measurements']['compiled']['rows_written']} rows, hand-written equal to compiled "
        f"(bytes identical: {checks[0]['bytes_identical']}, max relative double difference "
        f"{max(c['max_rel_diff'] for c in checks):.1e})"
    )
    print(
        f"interference during the timed runs: other processes {bench['total_other_cpu_s']:.1f} CPU s,"
        f" hypervisor steal {bench['total_steal_s']:.1f} CPU s (both ~0 on a quiet machine)"
    )
    for kind, prof in bench.get("profile", {}).items():
        print(f"\nprofile ({kind}, untimed run with the profiler, {prof['query_s_with_profiler']:.2f} s):")
        for op in prof["operators"]:
            if op["cpu_s"] >= 0.05:
                detail = op["detail"].replace("\n", " ")[:90]
                name = "  " * op["depth"] + op["operator"]
                print(f"  {name:<30}{op['cpu_s']:>8.2f} s{op['rows']:>13,}  {detail}")
    print()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dir", type=Path, help="work dir for the CSV (default: a new temp dir)")
    parser.add_argument("--gb", type=float, default=1.0, help="minimum CSV size in GB (10**9 bytes); default 1.0")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions per measurement (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the CSV for a later run with --dir")
    parser.add_argument("--no-profile", action="store_true", help="skip the untimed profiled runs")
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=REPO_ROOT / "bench" / "results",
        help="where usql-<date>.json goes (default: bench/results)",
    )
    parser.add_argument("--child", choices=CHILD_KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Generate or reuse the CSV, benchmark, print and save the results, clean up."""
    args = parse_args(argv)
    if args.child:
        return child_main(args.child, args.csv, args.out, args.profile_to)
    workdir: Path = (args.dir or Path(tempfile.mkdtemp(prefix="amlpipe-bench-usql-"))).resolve()
    if workdir == REPO_ROOT or REPO_ROOT in workdir.parents:
        print(f"refusing to put a {args.gb} GB CSV inside the repository: {workdir}")
        return 2
    workdir.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    try:
        data = ensure_data(workdir, int(args.gb * GB))
        action = f"generated in {data.generation_s:.1f} s" if data.generated else "reused"
        print(f"data {action}: {data.path} ({data.size_bytes / GB:.3f} GB, {data.rows:,} rows)", flush=True)
        bench = run_benchmark(data, workdir, args.repeats, not args.no_profile)
    finally:
        (workdir / "child.out").unlink(missing_ok=True)
        if not args.keep:
            for name in ("orders.csv", "orders.json", "out"):
                target = workdir / name
                if target.is_dir():
                    shutil.rmtree(target)
                else:
                    target.unlink(missing_ok=True)
            if args.dir is None or not any(workdir.iterdir()):
                shutil.rmtree(workdir, ignore_errors=True)

    print_table(data, bench, machine)
    now = datetime.now(timezone.utc)
    payload = {
        "benchmark": "usql-duckdb",
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/bench_usql.py", *(sys.argv[1:] if argv is None else argv)]),
        "repeats": args.repeats,
        "page_cache": "warm for every measurement (the CSV is read once, untimed, first)",
        "baseline": "hand-written DuckDB SQL: typed read_csv, WHERE, GROUP BY ALL, COPY TO csv with format options",
        "timing": "query_s: inside a fresh child process, after imports (compile + run for the U-SQL script)",
        "peak_rss": "ru_maxrss of each child process from wait4 (the whole Python process)",
        "machine": machine,
        "data": {**data.as_dict(), "kept": args.keep},
        "usql_script": USQL_SCRIPT,
        "handwritten_sql": HANDWRITTEN_SQL,
        "time_ratio_compiled_vs_handwritten": {
            "median": bench["measurements"]["compiled"]["time_ratio_vs_handwritten"],
            "min": bench["measurements"]["compiled"]["min_time_ratio_vs_handwritten"],
            "cpu": bench["measurements"]["compiled"]["cpu_ratio_vs_handwritten"],
            "noise_estimate_handwritten_again": bench["measurements"]["handwritten_again"]["time_ratio_vs_handwritten"],
        },
        **bench,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"usql-{now.date().isoformat()}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"results written to {out}")
    if args.keep:
        print(f"data kept: rerun with --dir {workdir} --keep to reuse it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
