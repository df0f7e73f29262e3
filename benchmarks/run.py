"""`make bench`: flightdeck against a plain-DuckDB script doing the same work, in the same run.

Measures (wall seconds, peak RSS of the measured process tree), each in a fresh process:
- plain DuckDB: read all daily CSVs (declared types, no sniffing), build the three marts;
- flightdeck load only: contract checks + validation + quarantine + atomic load (no Dagster);
- flightdeck ranged backfill: `dagster asset materialize --select 'raw/flights*' --partition-range ...`,
  one run through the marts, validation and dbt included;
- one run per partition: the median of a few single-partition runs, times 365 (running all 365 would
  take hours on a 2-core machine; the extrapolation is marked as such).
For the 1x year and the 10x year (each day repeated 10 times, flight numbers offset by 10000*k).
Writes benchmarks/results/latest.md and latest.json.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import sensor_latency  # benchmarks/ is on sys.path when run as a script
import stream_latency

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "results"
YEAR = ("2013-01-01", "2013-12-31")
sys.path.insert(0, str(ROOT))
from internals import PARTS  # noqa: E402

# Every part of internals/ switched off: the stock Dagster / dagster-dbt path.
STOCK_PATH = {part.switch: "false" for part in PARTS.values()}


def run(cmd: list[str], env: dict[str, str], may_fail: bool = False) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in GB, stdout) of one command in a fresh process (GNU time's %M).
    `may_fail`: a non-zero exit is expected (a run that holds a bad day back fails by design)."""
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *cmd], env=env, cwd=ROOT, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if done.returncode != 0 and not may_fail:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024 / 1024, done.stdout.strip()


def prepare(scale: int) -> Path:
    data = WORK / f"scale{scale}"
    if not (data / "landing" / "flights" / "2013-12-31.csv").exists():
        subprocess.run(
            [
                str(BIN / "python"),
                "scripts/prepare_demo_data.py",
                "--data-dir",
                str(data),
                "--scale",
                str(scale),
            ],
            cwd=ROOT,
            check=True,
        )
    return data


# One warehouse path for every scale, as a deployment has: dbt's kept parse state matches it from the
# second run on (resources/dbt.py, keep_parse_state); the file itself is removed before every sample.
WAREHOUSE = WORK / "warehouse.duckdb"


def env_for(data: Path, home: Path) -> dict[str, str]:
    WAREHOUSE.unlink(missing_ok=True)
    for name in ("plain.duckdb", "load_only.duckdb"):
        (data / name).unlink(missing_ok=True)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FLIGHTDECK_DATA_DIR": str(data),
        "FLIGHTDECK_DUCKDB_PATH": str(WAREHOUSE),
        "FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{data / 'reference.sqlite'}",
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    }


def interleaved(
    repeats: int, measurements: dict[str, Callable[[], tuple[float, float]]]
) -> dict[str, list[tuple[float, float]]]:
    """Each measurement `repeats` times, taking turns: on a shared machine speed drifts between minutes, and
    taking turns spreads the drift over all of them alike, so their ratios stay fair."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in measurements}
    for _ in range(repeats):
        for name, measure in measurements.items():
            samples[name].append(measure())
    return samples


def median_and_peak(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples)


BAD_DAY = "2013-07-01"


def with_one_bad_day(data: Path) -> Path:
    """A copy of `data` (hard links: no extra disk) whose BAD_DAY fails the quarantine gate (5% of its
    rows have an unknown origin): the ranged run holds that day back and loads the other 364."""
    bad = WORK / f"{data.name}_bad_day"
    day = bad / "landing" / "flights" / f"{BAD_DAY}.csv"
    if not day.exists():
        shutil.rmtree(bad, ignore_errors=True)
        shutil.copytree(data / "landing", bad / "landing", copy_function=os.link)
        shutil.copy(data / "reference.sqlite", bad / "reference.sqlite")
        lines = day.read_text().splitlines()
        day.unlink()  # a new file, not the hard-linked original
        origin = lines[0].split(",").index("origin")
        for i in range(1, len(lines), 20):
            fields = lines[i].split(",")
            fields[origin] = "XXX"
            lines[i] = ",".join(fields)
        day.write_text("\n".join(lines) + "\n")
    return bad


# The lake's measurements: on the 10x year, where PostgreSQL answers on 127.0.0.1:5432.
LAKE_SCALE = 10
LAKE_CATALOG_DB = "flightdeck_bench_lake"  # one name every turn: the lake's dbt parse stays valid
HALVES = (("2013-01-01", "2013-06-30"), ("2013-07-01", "2013-12-31"))
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def postgres_reachable() -> bool:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def _recreate_catalog(create: bool) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{LAKE_CATALOG_DB}" WITH (FORCE)'))
        if create:
            conn.execute(sa.text(f'CREATE DATABASE "{LAKE_CATALOG_DB}"'))
    engine.dispose()


KEPT_PARSE = ROOT / "dbt_project" / "target" / "partial_parse.msgpack"


@contextlib.contextmanager
def on_lake(data: Path, home: Path):
    """The bench's environment with the warehouse on a new, empty DuckLake. dbt's kept parse is the
    last run's (resources/dbt.py, keep_parse_state): the lake's own is put in place for the turn and the
    file warehouse's given back after it, so neither path re-parses because the other ran."""
    env = env_for(data, home)
    lake_data = WORK / "lake_data"
    shutil.rmtree(lake_data, ignore_errors=True)
    _recreate_catalog(create=True)
    lake_parse, file_parse = WORK / "lake_partial_parse.msgpack", KEPT_PARSE.read_bytes()
    if lake_parse.exists():
        KEPT_PARSE.write_bytes(lake_parse.read_bytes())
    try:
        yield env | {
            "FLIGHTDECK_WAREHOUSE": "ducklake",
            "FLIGHTDECK_DUCKLAKE_CATALOG": f"dbname={LAKE_CATALOG_DB} host=127.0.0.1 user=postgres",
            "FLIGHTDECK_DUCKLAKE_DATA_PATH": str(lake_data),
        }
    finally:
        lake_parse.write_bytes(KEPT_PARSE.read_bytes())
        KEPT_PARSE.write_bytes(file_parse)
        _recreate_catalog(create=False)
        shutil.rmtree(lake_data, ignore_errors=True)


def dagster(*args: str) -> list[str]:
    return [str(BIN / "dagster"), "asset", "materialize", "-f", "definitions.py", *args]


def run_breakdown(home: Path, wall: float) -> dict[str, float]:
    """Where the ranged backfill's wall time went, from the run's own records in its instance."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        ranged_run = instance.get_runs(limit=1)[0]  # newest first
        record = instance.get_run_record_by_id(ranged_run.run_id)
        steps = {
            s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(ranged_run.run_id)
        }
    run_s = record.end_time - record.start_time
    return {
        "startup_s": wall - run_s,  # interpreter, imports, definitions, run creation, planned events
        "run_s": run_s,  # what the UI shows as the run's duration
        "raw_step_s": steps["raw__flights"],
        "dbt_step_s": steps["daily_dbt_models"],
    }


ONE_DAY = "2013-07-01"
# The O(day) pair runs on the 10x year's history (the measure); the other scales skip it.
ONE_DAY_PAIR_SCALE = 10
# Above this scale (the 100x year) a turn is the plain script and the ranged backfill only, with where the
# backfill's time goes: the other measurements would add about an hour to the 100x year's five turns.
FULL_SET_MAX_SCALE = 10


def bench_scale(
    scale: int, repeats: int, per_partition_samples: int, one_day_pair: bool, lake_pair: bool
) -> dict:
    full_set = scale <= FULL_SET_MAX_SCALE
    data = prepare(scale)
    home = WORK / f"home{scale}"
    figures: dict[str, object] = {"scale": scale, "turns": repeats}

    def plain():
        env = env_for(data, home)
        wall, peak, rows = run([str(BIN / "python"), "benchmarks/plain_duckdb.py", str(data)], env)
        figures["rows_year"] = int(rows)  # its fct_flights' rows: the year's (the load's count, when run)
        return wall, peak

    work: dict[tuple[str, str], list[float]] = {}

    def load_only(first, last):
        def once():
            env = env_for(data, home)
            wall, peak, out = run(
                [str(BIN / "python"), "benchmarks/load_only.py", str(data), first, last], env
            )
            rows, work_s = out.split()
            figures[f"rows_{first}_{last}"] = int(rows)
            work.setdefault((first, last), []).append(float(work_s))
            return wall, peak

        return once

    breakdowns: list[dict[str, float]] = []

    def ranged():
        env = env_for(data, home)
        run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
        measured = run(
            dagster("--select", "raw/flights*", "--partition-range", f"{YEAR[0]}...{YEAR[1]}"), env
        )
        breakdowns.append(run_breakdown(home, measured[0]))
        return measured[:2]

    def ranged_stock():
        env = env_for(data, home) | STOCK_PATH
        run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
        year = f"{YEAR[0]}...{YEAR[1]}"
        return run(dagster("--select", "raw/flights*", "--partition-range", year), env)[:2]

    fresh_turns = iter(range(repeats))

    def ranged_fresh_dir():
        """As a new user meets it: a data dir and warehouse path no run has used before, and a fresh
        instance (dbt keeps its parse: only where the warehouse is changed, internals/dbt_launcher.py)."""
        fresh = WORK / f"fresh{scale}_{next(fresh_turns)}"
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(data / "landing", fresh / "landing", copy_function=os.link)
        shutil.copy(data / "reference.sqlite", fresh / "reference.sqlite")
        env = env_for(fresh, home) | {"FLIGHTDECK_DUCKDB_PATH": str(fresh / "warehouse.duckdb")}
        run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
        year = f"{YEAR[0]}...{YEAR[1]}"
        # The run keeps its own parse as the project's latest (resources/dbt.py, keep_parse_state); the
        # other measurements' warehouse path gets its own back, or their next run would re-parse too.
        kept = ROOT / "dbt_project" / "target" / "partial_parse.msgpack"
        saved = kept.read_bytes()
        try:
            return run(dagster("--select", "raw/flights*", "--partition-range", year), env)[:2]
        finally:
            kept.write_bytes(saved)
            shutil.rmtree(fresh, ignore_errors=True)

    bad = with_one_bad_day(data)

    def ranged_bad_day():
        env = env_for(bad, home)
        run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
        year = f"{YEAR[0]}...{YEAR[1]}"
        return run(dagster("--select", "raw/flights*", "--partition-range", year), env, may_fail=True)[:2]

    history = WORK / f"history{scale}.duckdb"
    history.unlink(missing_ok=True)  # built once a bench by the code under test

    def one_day(on_history: bool):
        """A one-day run (re-loading ONE_DAY through the marts) on an empty warehouse, or on one that
        already holds the whole year: O(day) when the two cost the same. A fresh instance each."""

        def once():
            env = env_for(data, home)
            if on_history:
                if not history.exists():
                    run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
                    year = f"{YEAR[0]}...{YEAR[1]}"
                    run(dagster("--select", "raw/flights*", "--partition-range", year), env)
                    shutil.copy(WAREHOUSE, history)
                    env = env_for(data, home)
                shutil.copy(history, WAREHOUSE)
            else:
                run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
            return run(dagster("--select", "raw/flights*", "--partition", ONE_DAY), env)[:2]

        return once

    def ranged_lake():
        """The same ranged backfill with the warehouse on a DuckLake (a new catalog on the local
        PostgreSQL and an empty data folder each turn)."""
        with on_lake(data, home) as env:
            run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
            return run(
                dagster("--select", "raw/flights*", "--partition-range", f"{YEAR[0]}...{YEAR[1]}"), env
            )[:2]

    def lake_two_halves():
        """The year as two half-year backfills at the same time, on the lake: their loads write at once."""
        with on_lake(data, home) as env:
            run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
            started = time.perf_counter()
            halves = [
                subprocess.Popen(
                    [
                        "/usr/bin/time",
                        "-f",
                        "%M",
                        *dagster("--select", "raw/flights*", "--partition-range", f"{a}...{b}"),
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for a, b in HALVES
            ]
            errors = [half.communicate()[1] for half in halves]
            wall = time.perf_counter() - started
            if any(half.returncode for half in halves):
                raise RuntimeError(
                    "a half-year backfill on the lake failed:\n" + "\n".join(e[-3000:] for e in errors)
                )
            return wall, sum(int(e.strip().splitlines()[-1]) for e in errors) / 1024 / 1024

    measurements = {"plain": plain, "ranged": ranged}
    if full_set:
        measurements |= {
            "load_day": load_only("2013-07-01", "2013-07-01"),
            "load_year": load_only(*YEAR),
            "ranged_stock": ranged_stock,
            "ranged_bad_day": ranged_bad_day,
            "ranged_fresh_dir": ranged_fresh_dir,
        }
    if one_day_pair:
        measurements |= {"one_day_empty": one_day(False), "one_day_on_history": one_day(True)}
    if lake_pair:
        measurements |= {"ranged_lake": ranged_lake, "lake_two_halves": lake_two_halves}
    samples = interleaved(repeats, measurements)
    figures["plain_duckdb_s"], figures["plain_duckdb_peak_gb"] = median_and_peak(samples["plain"])
    figures["ranged_backfill_s"], figures["ranged_backfill_peak_gb"] = median_and_peak(samples["ranged"])
    if full_set:
        figures["load_day_s"], _ = median_and_peak(samples["load_day"])
        figures["load_year_s"], figures["load_year_peak_gb"] = median_and_peak(samples["load_year"])
        figures["load_day_work_s"] = statistics.median(work[("2013-07-01", "2013-07-01")])
        figures["load_year_work_s"] = statistics.median(work[YEAR])
        figures["rows_year"] = figures.pop(f"rows_{YEAR[0]}_{YEAR[1]}")
        figures["rows_day"] = figures.pop("rows_2013-07-01_2013-07-01")
        figures["ranged_bad_day_s"], _ = median_and_peak(samples["ranged_bad_day"])
        figures["ranged_stock_s"], _ = median_and_peak(samples["ranged_stock"])
        figures["ranged_fresh_dir_s"], _ = median_and_peak(samples["ranged_fresh_dir"])
        figures["fresh_dir_over_plain"] = statistics.median(
            f[0] / p[0] for p, f in zip(samples["plain"], samples["ranged_fresh_dir"], strict=True)
        )
        figures["stock_over_ranged"] = statistics.median(
            s[0] / r[0] for r, s in zip(samples["ranged"], samples["ranged_stock"], strict=True)
        )
    # The ratio of each turn's pair (plain, ranged measured one after the other), then their median.
    figures["ranged_over_plain"] = statistics.median(
        r[0] / p[0] for p, r in zip(samples["plain"], samples["ranged"], strict=True)
    )
    if one_day_pair:
        figures["one_day_empty_s"], _ = median_and_peak(samples["one_day_empty"])
        figures["one_day_on_history_s"], _ = median_and_peak(samples["one_day_on_history"])
        figures["one_day_history_over_empty"] = statistics.median(
            h[0] / e[0] for e, h in zip(samples["one_day_empty"], samples["one_day_on_history"], strict=True)
        )
    if lake_pair:
        figures["ranged_lake_s"], figures["ranged_lake_peak_gb"] = median_and_peak(samples["ranged_lake"])
        figures["lake_two_halves_s"], figures["lake_two_halves_peak_gb"] = median_and_peak(
            samples["lake_two_halves"]
        )
        figures["lake_over_file"] = statistics.median(
            lk[0] / f[0] for f, lk in zip(samples["ranged"], samples["ranged_lake"], strict=True)
        )
        # Throughput of two writers at once against one writer of the same rows: above 1.0 is a gain.
        figures["lake_two_writers_throughput"] = statistics.median(
            one[0] / two[0]
            for one, two in zip(samples["ranged_lake"], samples["lake_two_halves"], strict=True)
        )
    for name in breakdowns[0]:
        figures[f"ranged_{name}"] = statistics.median(b[name] for b in breakdowns)

    if per_partition_samples:
        env = env_for(data, home)
        run(dagster("--select", "raw/airlines,raw/airports,raw/planes"), env)
        days = [f"2013-03-{d:02d}" for d in range(1, per_partition_samples + 1)]
        walls = [run(dagster("--select", "raw/flights*", "--partition", day), env)[0] for day in days]
        figures["per_partition_run_s"] = statistics.median(walls)
        figures["per_partition_year_s_extrapolated"] = statistics.median(walls) * 365
    return figures


def markdown(results: list[dict], sensor: dict) -> str:
    lines = [
        "# flightdeck benchmarks",
        "",
        f"Machine: {os.cpu_count()} cores. Wall seconds, medians; peak RSS of the measured process.",
        "Produced by `make bench` (benchmarks/run.py); each figure is a fresh process, so Python and",
        "Dagster start-up are included where a user would pay them. The measurements take turns (plain,",
        "load, ranged, again), so the machine's drift between minutes touches them alike; ranged / plain is",
        f"the median of each turn's ratio ({results[0].get('turns', 3)} turns a scale).",
        "",
        "| scale | rows | plain DuckDB | flightdeck validate + load (process) | of which the work | work rows/s "
        "| ranged backfill (CLI, through marts) | ranged / plain | per-partition run | per-partition year "
        "(extrapolated) | per-partition / ranged |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        per_part = r.get("per_partition_run_s")
        lines.append(
            f"| {r['scale']}x | {r['rows_year']:,} | {r['plain_duckdb_s']:.1f} s ({r['plain_duckdb_peak_gb']:.2f} GB) "
            + (
                f"| {r['load_year_s']:.1f} s ({r['load_year_peak_gb']:.2f} GB) | {r['load_year_work_s']:.1f} s "
                f"| {r['rows_year'] / r['load_year_work_s']:,.0f} "
                if "load_year_s" in r
                else "| - | - | - "
            )
            + f"| {r['ranged_backfill_s']:.1f} s ({r['ranged_backfill_peak_gb']:.2f} GB) "
            f"| {r.get('ranged_over_plain', r['ranged_backfill_s'] / r['plain_duckdb_s']):.2f}x "
            + (
                f"| {per_part:.1f} s | {r['per_partition_year_s_extrapolated'] / 60:.0f} min "
                f"| {r['per_partition_year_s_extrapolated'] / r['ranged_backfill_s']:.0f}x |"
                if per_part
                else "| - | - | - |"
            )
        )
    day = results[0]
    lines += [
        "",
        f"One day ({day['rows_day']:,} rows, 1x): validate and load in {day['load_day_work_s']:.2f} s of work "
        f"({day['rows_day'] / day['load_day_work_s']:,.0f} rows/s), {day['load_day_s']:.2f} s with process start-up.",
        "",
        "Where the ranged backfill's wall time goes (medians, from the run's own records): start-up is the",
        "interpreter, the imports of Dagster, dagster-dbt and pandera, loading the definitions and creating",
        "the run; the dbt step includes dbt's start (the project, the adapter, the partial parse that finds",
        "nothing changed; its imports are done by the run's warm dbt process while the raw step loads, when",
        "that step is long enough) besides the work, ~5 s of it on the 10x year.",
        "",
        "| scale | ranged backfill | start-up | run (as the UI shows it) | raw/flights step | dbt step |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['scale']}x | {r['ranged_backfill_s']:.1f} s | {r['ranged_startup_s']:.1f} s "
            f"| {r['ranged_run_s']:.1f} s | {r['ranged_raw_step_s']:.1f} s | {r['ranged_dbt_step_s']:.1f} s |"
            for r in results
            if "ranged_run_s" in r
        ),
        "",
        "Per row, the ranged run (as the UI shows it, start-up left out) costs "
        + ", ".join(
            f"{r['ranged_run_s'] / r['rows_year'] * 1e6:.2f} µs at {r['scale']}x"
            for r in results
            if "ranged_run_s" in r
        )
        + f" (scales above {FULL_SET_MAX_SCALE}x: the plain script and the ranged backfill only, in turns).",
        "",
        f"A year with one bad day ({BAD_DAY} fails the quarantine gate: held back, the other 364 days loaded "
        "through the marts, the run fails naming it) against the clean year, same turns: "
        + "; ".join(
            f"{r['scale']}x {r['ranged_bad_day_s']:.1f} s vs {r['ranged_backfill_s']:.1f} s"
            for r in results
            if "ranged_bad_day_s" in r
        )
        + ".",
        "",
        "The same ranged backfill on a new data dir and warehouse path (as on a new user's first run after "
        "changing FLIGHTDECK_DATA_DIR; dbt keeps the parse `make install` made, only the warehouse's location "
        "changed) and a fresh instance, same turns: "
        + "; ".join(
            f"{r['scale']}x {r['ranged_fresh_dir_s']:.1f} s ({r['fresh_dir_over_plain']:.2f}x plain)"
            for r in results
            if "ranged_fresh_dir_s" in r
        )
        + ".",
        "",
        f"A one-day run ({ONE_DAY} re-loaded through the marts, CLI, fresh instance) on a warehouse that "
        "already holds the year against the same run on an empty one, same turns (O(day) when they cost "
        "the same: the marts' tests read the window's audit tables, the staging tests the window): "
        + "; ".join(
            f"{r['scale']}x {r['one_day_on_history_s']:.1f} s vs {r['one_day_empty_s']:.1f} s "
            f"({r['one_day_history_over_empty']:.2f}x)"
            for r in results
            if "one_day_on_history_s" in r
        )
        + ".",
        "",
        "The same ranged backfill with the warehouse on a DuckLake (a new catalog on the local PostgreSQL, "
        "an empty data folder), and the year as two half-year backfills at the same time on it (their "
        "loads write at once, their dbt builds too, their publishes one after the other), same turns: "
        + "; ".join(
            f"{r['scale']}x {r['ranged_lake_s']:.1f} s on the lake vs {r['ranged_backfill_s']:.1f} s on the "
            f"file ({r['lake_over_file']:.2f}x); two halves at once {r['lake_two_halves_s']:.1f} s, "
            f"{r['lake_two_writers_throughput']:.2f}x the throughput of one writer of the year "
            f"(peak RSS of both {r['lake_two_halves_peak_gb']:.2f} GB)"
            for r in results
            if "ranged_lake_s" in r
        )
        + ".",
        "",
        "The same ranged backfill with every part of internals/ off (the stock Dagster / dagster-dbt "
        "path, docs/performance.md), same turns: "
        + "; ".join(
            f"{r['scale']}x {r['ranged_stock_s']:.1f} s vs {r['ranged_backfill_s']:.1f} s "
            f"({r['stock_over_ranged']:.2f}x)"
            for r in results
            if "ranged_stock_s" in r
        )
        + ".",
        "",
        f"Sensor latency (`dagster dev`, default settle time 2 s, the sensor on every loop of the sensor daemon (5 s), run queue checked every second): a file dropped "
        f"until the marts hold its rows, {sensor['sensor_drops']} drops one after another: median "
        f"{sensor['sensor_latency_median_s']:.1f} s, worst {sensor['sensor_latency_worst_s']:.1f} s "
        f"({', '.join(f'{s:.1f}' for s in sensor['sensor_latency_s'])} s).",
    ]
    if "stream_latency_s" in sensor:
        lines += [
            "",
            "Live flight events (`dagster dev` on a new data dir and instance, the local Redis, default "
            "settings: both sensors on every loop of the sensor daemon, 5 s): one event published until "
            "marts.live_flight_status shows it, one at a time: median "
            f"{sensor['stream_latency_median_s']:.1f} s, worst {sensor['stream_latency_worst_s']:.1f} s "
            f"({', '.join(f'{s:.1f}' for s in sensor['stream_latency_s'])} s; the first, with the new data "
            f"dir's first dbt run, {sensor['stream_first_event_s']:.1f} s). A burst of "
            f"{sensor['stream_burst_events']:,} events (published in {sensor['stream_burst_publish_s']:.1f} s) "
            f"consumed in {sensor['stream_burst_consumed_s']:.1f} s, {sensor['stream_burst_events_per_s']:,} "
            f"events/s, in {sensor['stream_burst_batches']} micro-batches of at most "
            f"{sensor['stream_burst_largest_batch']:,} (FLIGHTDECK_STREAM_BATCH_SIZE "
            f"{sensor['stream_batch_size']:,}), the live mart rebuilt between them.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--per-partition-samples", type=int, default=3)
    parser.add_argument("--sensor-drops", type=int, default=5)
    parser.add_argument("--stream-events", type=int, default=6, help="live events timed (Redis)")
    parser.add_argument(
        "--reuse-scales",
        action="store_true",
        help="keep the scale figures of latest.json, re-measure the sensor",
    )
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="measure --scales only; keep latest.json's other scales and its sensor figures (make bench-100)",
    )
    args = parser.parse_args()
    previous = json.loads((RESULTS / "latest.json").read_text()) if (RESULTS / "latest.json").exists() else {}
    if args.reuse_scales:
        results = previous["scales"] if isinstance(previous, dict) else previous
    else:
        results = []
        for scale in (int(s) for s in args.scales.split(",")):
            results.append(
                bench_scale(
                    scale,
                    args.repeats,
                    args.per_partition_samples if scale == 1 else 0,
                    one_day_pair=scale == ONE_DAY_PAIR_SCALE,
                    lake_pair=scale == LAKE_SCALE and postgres_reachable(),
                )
            )
            print(json.dumps(results[-1]), flush=True)
    sensor = None
    if args.keep_others and previous:
        measured = {r["scale"] for r in results}
        kept = [r for r in previous["scales"] if r["scale"] not in measured]
        results = sorted(kept + results, key=lambda r: r["scale"])
        sensor = previous["sensor"]
    if sensor is None:
        sensor = sensor_latency.measure(prepare(1), initial_days=3, drops=args.sensor_drops)
        if stream_latency.redis_reachable():
            sensor |= stream_latency.measure(prepare(1), events_timed=args.stream_events)
    print(json.dumps(sensor), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"scales": results, "sensor": sensor}, indent=2))
    (RESULTS / "latest.md").write_text(markdown(results, sensor))
    print(markdown(results, sensor))


if __name__ == "__main__":
    main()
