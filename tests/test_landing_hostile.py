"""Hostile entries in the landing folder: symlinks, names of any length and bytes, date spellings, a
quarantine that cannot be written, decompression bombs, files others could read, and a fuzzed folder
changing under the sensor. No tick fails, every good file is requested once, every bad one reported once."""

import datetime as dt
import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flightdeck.landing import LandingFileError, inspect
from flightdeck.schemas import FlightsSchema, column_names
from resources.landing import LandingArea
from sensors.landing_sensor import flights_landing_sensor
from tests.conftest import DEMO_DIR, ROOT, Env
from tests.runs import failure_messages, load_reference, run_job
from tests.test_validation_properties import DERANDOMIZE, EXAMPLES

COLUMNS = column_names(FlightsSchema)
GOOD = DEMO_DIR / "landing" / "flights" / "2013-01-02.csv"


class Sensor:
    """The landing sensor evaluated tick after tick on a real instance, as the daemon does."""

    def __init__(self, root: Path, instance):
        self.root, self.instance, self.cursor = root, instance, None
        self.requested: list[str] = []  # partition (or range) of each run requested

    def tick(self):
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"landing": LandingArea(data_dir=str(self.root))},
        )
        result = flights_landing_sensor(context)
        self.cursor = result.cursor
        for request in result.run_requests or []:
            if request.job_name == "flights_pipeline":
                tags = request.tags
                self.requested.append(
                    request.partition_key
                    or f"{tags['dagster/asset_partition_range_start']}...{tags['dagster/asset_partition_range_end']}"
                )
        return result


def sidecars(root: Path) -> list[dict]:
    folder = root / "quarantine" / "flights"
    return (
        [json.loads(p.read_text()) for p in sorted(folder.glob("*.reason.json"))] if folder.is_dir() else []
    )


@pytest.fixture
def landing(env, monkeypatch):
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "0")
    for path in env.landing.iterdir():
        path.unlink()
    return env.landing


def test_a_symlink_is_rejected_and_its_target_never_read_or_copied(env, instance, landing, tmp_path):
    secret = tmp_path / "private.csv"
    secret.write_text(GOOD.read_text() + "SECRET-MARKER\n")
    secret.chmod(0o600)
    (landing / "2013-01-03.csv").symlink_to(secret)
    shutil.copy(GOOD, landing / "2013-01-02.csv")
    sensor = Sensor(env.root, instance)
    sensor.tick()
    assert sensor.requested == ["2013-01-02"]
    [sidecar] = sidecars(env.root)
    assert sidecar["reason"] == "symlink" and sidecar["source_file"].endswith("2013-01-03.csv")
    assert not any(
        b"SECRET-MARKER" in p.read_bytes() for p in (env.root / "quarantine").rglob("*") if p.is_file()
    )
    sensor.tick()
    assert len(sidecars(env.root)) == 1  # reported once

    # A run asked for that day (a backfill) holds it back for the same reason, still unread.
    load_reference(instance)
    result = run_job("flights_pipeline", instance, partition_range=("2013-01-02", "2013-01-03"))
    assert "2013-01-03: landing_file: symlink" in failure_messages(result)
    assert env.query("SELECT DISTINCT strftime(flight_date, '%Y-%m-%d') FROM raw.flights") == [
        ("2013-01-02",)
    ]
    assert not any(
        b"SECRET-MARKER" in p.read_bytes() for p in (env.root / "quarantine").rglob("*") if p.is_file()
    )


@pytest.mark.parametrize(
    "name",
    [
        "2013-01-04" + "x" * 240 + ".csv",  # too long for a "<stamp>__<name>.reason.json" sidecar
        os.fsdecode(b"2013-01-04\xff\xfe.csv"),  # not UTF-8
        "2013-01-04\n.csv",  # a control character
        "2013-W01-5.csv",  # ISO week date: Python's parser takes it
        "20130104.csv",
        "2013-1-04.csv",
        "\uff12\uff10\uff11\uff13-01-04.csv",  # full-width digits
    ],
    ids=["long", "bytes", "newline", "week_date", "basic_format", "one_digit_month", "fullwidth"],
)
def test_a_bad_name_is_reported_once_and_never_wedges_the_sensor(env, instance, landing, name):
    (landing / name).write_bytes(GOOD.read_bytes())
    sensor = Sensor(env.root, instance)
    sensor.tick()
    [sidecar] = sidecars(env.root)
    assert sidecar["reason"] == "bad_name"
    shutil.copy(GOOD, landing / "2013-01-02.csv")  # a good file dropped later still loads
    sensor.tick()
    sensor.tick()
    assert sensor.requested == ["2013-01-02"] and len(sidecars(env.root)) == 1


def test_a_quarantine_that_cannot_be_written_is_reported_once_and_the_rest_goes_on(
    env, instance, landing, caplog
):
    (env.root / "quarantine").write_text("not a folder")  # every copy into it fails (root ignores modes)
    (landing / "2013-13-01.csv").write_bytes(b"x")
    shutil.copy(GOOD, landing / "2013-01-02.csv")
    sensor = Sensor(env.root, instance)
    sensor.tick()
    sensor.tick()
    assert sensor.requested == ["2013-01-02"]
    # Recorded as reported, so the next ticks neither try the copy nor report it again.
    assert "2013-13-01.csv" in json.loads(sensor.cursor)["rejected"]


def test_a_decompression_bomb_is_quarantined_with_its_reason_in_bounded_memory(tmp_path):
    bomb = tmp_path / "2013-01-05.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as out:
        out.write((",".join(COLUMNS) + "\n").encode())
        zeros = b"0" * (1 << 20)
        for _ in range(400):  # 400 MB uncompressed, ~400 KB on disk
            out.write(zeros)
    small = tmp_path / "2013-01-02.csv.gz"
    small.write_bytes(gzip.compress(GOOD.read_bytes()))

    def inspected(path: Path) -> tuple[str, int]:
        code = (
            "import datetime as dt, pathlib, resource, sys; sys.path.insert(0, '.')\n"
            "from flightdeck.landing import inspect, LandingFileError\n"
            "from flightdeck.schemas import FlightsSchema, column_names\n"
            "try:\n"
            f"    inspect(pathlib.Path({str(path)!r}), column_names(FlightsSchema), dt.date(2013, 1, 1),"
            " dt.date(2014, 1, 1), max_bytes=64 << 20); reason = 'ok'\n"
            "except LandingFileError as e:\n"
            "    reason = e.reason\n"
            "print(reason, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        )
        reason, peak_mb = done.stdout.split()
        return reason, int(peak_mb)

    (reason, peak), (ok, baseline) = inspected(bomb), inspected(small)
    assert (reason, ok) == ("too_large", "ok")
    assert peak < baseline + 32  # a few chunks at most, never the 400 MB


def test_a_truncated_gzip_stream_and_a_bad_byte_deep_in_a_file_are_named(tmp_path):
    data = gzip.compress(GOOD.read_bytes() * 20)
    truncated = tmp_path / "2013-01-02.csv.gz"
    truncated.write_bytes(data[: len(data) - 50])
    deep = tmp_path / "2013-01-03.csv"
    deep.write_bytes(GOOD.read_bytes() * 30 + b"\xff\n")  # past the first chunk
    for path, reason in ((truncated, "bad_compression"), (deep, "bad_encoding")):
        with pytest.raises(LandingFileError) as caught:
            inspect(path, COLUMNS, dt.date(2013, 1, 1), dt.date(2014, 1, 1))
        assert caught.value.reason == reason


def test_what_flightdeck_writes_is_not_readable_by_other_users(env, instance):
    code = "import definitions, os; print(oct(os.umask(0)))"
    assert (
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        == "0o77"
    )
    env.landing_file("2013-01-02").write_bytes(b"")  # a quarantine copy and sidecar too
    load_reference(instance)
    run_job("flights_pipeline", instance, partition_range=("2013-01-01", "2013-01-02"))
    written = [env.duckdb_path, *(env.root / "quarantine").rglob("*")]
    assert len(written) > 3
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


DEMO_DAYS = {f"2013-01-{d:02d}" for d in range(1, 15)}


def days_of(requested: list[str]) -> list[str]:
    days = []
    for entry in requested:
        first, _, last = entry.partition("...")
        day, last_day = dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)
        while day <= last_day:
            days.append(day.isoformat())
            day += dt.timedelta(days=1)
    return days


# A fuzzed folder: names of every kind, contents good and bad, symlinks, files renamed mid-scan.
NAMES = st.one_of(
    st.dates(dt.date(2013, 1, 1), dt.date(2013, 1, 14)).map(lambda d: f"{d}.csv"),
    st.sampled_from(["2013-W01-3.csv", "2013-01-32.csv", "2014-06-01.csv", "x.csv", "2013-01-05.CSV",
                     "2013-01-05.txt", "2013-01-05.csv.zip", "2013-01-05" + "y" * 250 + ".csv"]),
    st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]), min_size=1, max_size=40),
)  # fmt: skip
CONTENTS = st.sampled_from(["good", "empty", "garbage", "symlink"])


@settings(
    max_examples=max(5, EXAMPLES // 2),
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    entries=st.lists(st.tuples(NAMES, CONTENTS), max_size=12, unique_by=lambda e: e[0]), churn=st.booleans()
)
def test_fuzzed_landing_folder_never_fails_a_tick(instance, monkeypatch, entries, churn):
    monkeypatch.setenv("FLIGHTDECK_LANDING_SETTLE_SECONDS", "0")
    root = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        env = Env(root)
        env.landing.mkdir(parents=True)
        written = {}
        for name, content in entries:
            if (
                name in (".", "..")
                or name.startswith(".")
                or name.endswith((".part", ".tmp", ".partial", ".crdownload", ".swp"))
            ):
                continue
            path = env.landing / name
            try:
                if content == "symlink":
                    path.symlink_to(GOOD)
                else:
                    path.write_bytes(
                        {"good": GOOD.read_bytes(), "empty": b"", "garbage": b"\x00\xff" * 50}[content]
                    )
            except OSError:  # a name the file system itself refuses
                continue
            written[name] = content
        stop = threading.Event()

        def renamer():  # a writer renaming files while the sensor scans
            n = 0
            while not stop.is_set():
                n += 1
                src, dst = env.landing / f"churn{n % 2}.tmp", env.landing / "2013-01-13.csv"
                src.write_bytes(GOOD.read_bytes())
                os.replace(src, dst)
                dst.unlink(missing_ok=True)

        thread = threading.Thread(target=renamer, daemon=True)
        if churn:
            thread.start()
        sensor = Sensor(root, instance)
        try:
            for _ in range(3):
                sensor.tick()  # never raises
        finally:
            stop.set()
            if churn:
                thread.join()
        requested = days_of(sensor.requested)
        sensor.tick()
        assert days_of(sensor.requested) == requested  # the next tick requests nothing more
        assert len(requested) == len(set(requested))  # no day requested twice
        # The sensor judges names (a link is never followed); contents are the run's to judge.
        named_well = {
            n[:10] for n, c in written.items() if c != "symlink" and n[10:] == ".csv" and n[:10] in DEMO_DAYS
        }
        assert named_well <= set(requested) <= named_well | {"2013-01-13"}  # the churned file, if caught
        reported = [s["source_file"] for s in sidecars(root)]
        assert len(reported) == len(set(reported))  # every rejection reported once
    finally:
        shutil.rmtree(root, ignore_errors=True)
