"""The dbt resource: the partition window reaches the models through dbt's process environment, a
finished invocation's parse becomes the next one's starting point, and a run's dbt command runs in the
warm dbt process the run started (internals/dbt_launcher.py), with dbt's own output and exit code."""

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from flightdeck import lake, settings
from flightdeck.dbt_args import WINDOW_ENV_VARS, window_env, window_vars
from internals import dbt_launcher
from resources.dbt import LAUNCHER_ARGS, FlightdeckDbtCli
from tests.conftest import printed_by_fresh_python
from tests.dagster_dev import wait_until
from tests.postgres import requires_postgres


@pytest.fixture(autouse=True)
def _project_copies_are_this_deployments(monkeypatch, tmp_path):
    """The resources below point at a copy of the project, which their set-up takes as the deployment's
    (it refuses any other project, resources/dbt.py)."""
    monkeypatch.setattr(settings, "DBT_PROJECT_DIR", tmp_path / "dbt_project")


def copy_of_project(tmp_path: Path) -> tuple[Path, FlightdeckDbtCli]:
    """The dbt project copied (without invocation folders) and a resource pointed at the copy."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.PROJECT_ROOT / "dbt_project",
        project,
        ignore=shutil.ignore_patterns("daily_dbt_models-*", "logs"),
    )
    dbt = FlightdeckDbtCli(
        project_dir=str(project),
        profiles_dir=str(project),
        dbt_executable=sys.executable,
        global_config_flags=LAUNCHER_ARGS,  # as build_dbt_resource() configures it
    )
    return project, dbt


def parse_as_make_install_does(project: Path, warehouse: Path) -> None:
    """The copy's saved parse made for `warehouse`'s profile, as `make install` makes it: the copied one is
    whatever run kept it last, in the suite possibly one on the lake."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, dbt_launcher.__file__, "--cold", "parse", "--profiles-dir", ".", "--quiet"],
        cwd=project,
        env={**os.environ, settings.DUCKDB_PATH: str(warehouse)},
        check=True,
    )


def run_dbt(dbt: FlightdeckDbtCli, project: Path, args: list[str], target: Path):
    """The invocation, finished, and the pids dbt wrote in its JSON log lines."""
    invocation = dbt.cli_with_env(
        args, {}, manifest=project / "target" / "manifest.json", target_path=target, raise_on_error=False
    )
    pids = {event.raw_event["info"]["pid"] for event in invocation.stream_raw_events()}
    return invocation, pids


def process_is_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")  # a zombie is gone
    except FileNotFoundError:
        return True


@pytest.fixture
def warm_dbt(tmp_path, monkeypatch):
    """A resource set up as a run sets it up: its warm dbt process started."""
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))
    project, dbt = copy_of_project(tmp_path)
    context = dg.build_init_resource_context()
    dbt.setup_for_execution(context)
    yield project, dbt
    dbt.teardown_after_execution(context)


def test_window_reaches_the_models_and_the_parse_state_is_kept(tmp_path, monkeypatch):
    project, dbt = copy_of_project(tmp_path)
    parse_as_make_install_does(project, tmp_path / "install" / "warehouse.duckdb")
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))  # not the install-time one
    kept = project / "target" / "partial_parse.msgpack"

    def compile_fct_flights(first: dt.date, last: dt.date, target: Path):
        """The window's compiled fct_flights, after a successful `dbt compile` into `target`."""
        invocation = dbt.cli_with_env(
            ["compile", "--select", "fct_flights"],
            window_env(window_vars(first, last)),
            manifest=project / "target" / "manifest.json",
            target_path=target,
        )
        invocation.wait()
        assert invocation.is_successful()
        return invocation, next((target / "compiled").rglob("fct_flights.sql")).read_text()

    invocation, compiled = compile_fct_flights(
        dt.date(2013, 1, 2), dt.date(2013, 1, 5), tmp_path / "invocation"
    )
    assert not set(WINDOW_ENV_VARS.values()) & set(os.environ)  # set for the dbt process only
    assert "f.flight_date between date '2013-01-02' and date '2013-01-05'" in compiled
    # A warehouse in another folder than the install-time one keeps the install's parse (a new data dir).
    log = (tmp_path / "invocation" / "dbt.log").read_text()
    assert "Partial parsing enabled, no changes found, skipping parsing" in log

    dbt.keep_parse_state(invocation)
    assert kept.read_bytes() == (tmp_path / "invocation" / "partial_parse.msgpack").read_bytes()
    assert not list(kept.parent.glob(".partial_parse.*"))  # no staged copy left behind

    # The next day's window: the same parse serves it, nothing is parsed again (macros/partition_window.sql).
    _, compiled = compile_fct_flights(dt.date(2013, 1, 6), dt.date(2013, 1, 6), tmp_path / "next-day")
    assert "f.flight_date between date '2013-01-06' and date '2013-01-06'" in compiled
    log = (tmp_path / "next-day" / "dbt.log").read_text()
    assert "Partial parsing enabled, no changes found, skipping parsing" in log
    assert "0 files deleted, 0 files added, 0 files changed" in log


@pytest.mark.parametrize("launch", ["warm", "cold"])
def test_only_what_dbt_builds_decides_whether_it_parses_again_not_where_the_warehouse_is(tmp_path, launch):
    """dbt re-parses when a profile value it could read while parsing changes: a warehouse file of
    another name is another database name and is parsed again; the same name in another folder (a new
    data dir, another lake catalog) is not (internals/dbt_launcher.keep_parse_across_warehouses)."""
    project, dbt = copy_of_project(tmp_path)
    parse_as_make_install_does(project, tmp_path / "install" / "warehouse.duckdb")
    said = {}
    for folder, name in (("a", "warehouse"), ("b", "warehouse"), ("b", "other")):
        warehouse = tmp_path / folder / f"{name}.duckdb"
        warehouse.parent.mkdir(exist_ok=True)
        target = tmp_path / f"invocation-{folder}-{name}"
        env = {settings.DUCKDB_PATH: str(warehouse)}
        if launch == "warm":  # else the launcher finds no warm process and becomes dbt itself
            context = dg.build_init_resource_context()
            dbt.setup_for_execution(context)
        try:
            invocation = dbt.cli_with_env(
                ["compile", "--select", "stg_flights"],
                env,
                manifest=project / "target" / "manifest.json",
                target_path=target,
                raise_on_error=False,
            )
            invocation.wait()
        finally:
            if launch == "warm":
                dbt.teardown_after_execution(context)
        assert invocation.is_successful()
        dbt.keep_parse_state(invocation)
        said[folder, name] = (target / "dbt.log").read_text()
    assert "Partial parsing enabled, no changes found" in said["a", "warehouse"]
    assert "Partial parsing enabled, no changes found" in said["b", "warehouse"]
    assert "Unable to do partial parsing because profile has changed" in said["b", "other"]


@requires_postgres
def test_on_the_lake_the_next_invocation_starts_from_the_kept_parse(on_lake, tmp_path):
    """dbt on the lake keeps partial parsing: the first invocation re-parses (the install-time state was
    parsed for the DuckDB file's profile), the next one starts from the state the first one kept. The
    first is also the data dir's first use of the lake: dbt itself lays out the extensions it loads."""
    project, dbt = copy_of_project(tmp_path)
    said = []
    for n in (1, 2):
        target = tmp_path / f"invocation-{n}"
        invocation, _ = run_dbt(dbt, project, ["compile", "--select", "stg_flights"], target)
        assert invocation.is_successful()
        dbt.keep_parse_state(invocation)
        said.append((target / "dbt.log").read_text())
    assert "Unable to do partial parsing because profile has changed" in said[0]
    assert "Unable to do partial parsing" not in said[1] and "Partial parsing enabled" in said[1]


def test_only_the_newest_invocation_folders_are_kept(tmp_path):
    project, dbt = copy_of_project(tmp_path)
    target = project / "target"
    folders = [target / f"daily_dbt_models-{n:07x}-abcdef{n}" for n in range(5)]
    for age, folder in enumerate(reversed(folders)):  # folders[4] is the oldest
        (folder / "compiled").mkdir(parents=True)
        os.utime(folder, (1_000_000 + age, 1_000_000 + age))
    (target / "compiled").mkdir(exist_ok=True)  # from a dbt run by hand: not dagster-dbt's, kept
    before = {p.name for p in target.iterdir()}

    dbt.prune_invocation_folders(keep=2)

    assert {p.name for p in target.iterdir()} == before - {f.name for f in folders[2:]}


def test_a_runs_dbt_command_runs_in_its_warm_process_and_only_one(warm_dbt, tmp_path, monkeypatch):
    project, dbt = warm_dbt
    for n in range(4):  # a large environment (400 KB) arrives whole, over several reads
        monkeypatch.setenv(f"FLIGHTDECK_TEST_PADDING_{n}", "x" * 100_000)
    warm = dbt._warm
    invocation, pids = run_dbt(dbt, project, ["compile", "--select", "stg_flights"], tmp_path / "first")

    assert invocation.is_successful()
    assert pids == {warm.pid} != {invocation.process.pid}  # dbt ran in the warm process, not the launcher
    assert (tmp_path / "first" / "compiled").is_dir()  # dbt's target path from dagster-dbt's environment
    assert warm.wait(timeout=10) == 0  # one command per warm process: it has ended
    # The next command (a retry in the same run) finds no warm process and runs dbt itself.
    again, pids = run_dbt(dbt, project, ["compile", "--select", "stg_flights"], tmp_path / "second")
    assert again.is_successful()
    assert pids == {again.process.pid}  # the launcher exec'd dbt: same process


def test_a_failing_command_fails_with_dbts_own_exit_code_and_errors(warm_dbt, tmp_path):
    project, dbt = warm_dbt
    broken = ["compile", "--inline", "select {{ no_such_macro() }}"]
    warm_pid = dbt._warm.pid
    warm, warm_pids = run_dbt(dbt, project, broken, tmp_path / "warm")
    cold, _ = run_dbt(dbt, project, broken, tmp_path / "cold")  # the warm process is used up

    assert warm_pids == {warm_pid}
    assert not warm.is_successful()
    assert warm.process.returncode == cold.process.returncode != 0
    assert "no_such_macro" in str(warm.get_error())


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["dagster", "api", "execute_run", "{}"], True),  # a launched run's worker
        (["dagster", "asset", "materialize", "--select", "raw/flights*"], True),
        (["dagster", "job", "execute", "-j", "flights_pipeline"], True),
        (["dg", "launch", "--assets", "*"], True),
        (["dagster", "api", "grpc", "--lazy-load-user-code"], False),  # a code server runs no run
        (["dagster-daemon", "run"], False),
        (["dagster", "asset", "list"], False),
    ],
)
def test_a_process_that_executes_a_run_starts_its_warm_dbt_before_its_definitions_load(argv, starts):
    """Started where definitions.py begins, dbt imports while the process imports Dagster."""
    code = (
        f"import sys; sys.argv = {argv!r}; from internals import dbt_launcher; "
        "before = set(dbt_launcher._started_early); import definitions; "
        "[(warm, folder)] = dbt_launcher._started_early.values() or [(None, None)]; "
        "print(not before, warm is not None and warm.poll() is None)"
    )
    assert printed_by_fresh_python(code) == f"True {starts}"
    off = {**os.environ, settings.WARM_DBT: "false"}
    assert printed_by_fresh_python(code, env=off) == "True False"  # the switch of internals/ turns it off


@pytest.mark.parametrize("temp_folder", ["short", "too long for a socket"])
def test_a_cli_run_without_a_dbt_step_ends_its_early_warm_dbt_as_it_exits(env, tmp_path, temp_folder):
    """The warm dbt the CLI started early is not left to notice its parent gone: it shares the CLI's stderr,
    which a caller reads to its end (and it was seen to abort there, ended within an import). A TMPDIR too
    long for a Unix socket's path (108 bytes) once failed every run that loaded the definitions."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(settings.PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    if temp_folder == "short":
        temp = Path(tempfile.mkdtemp(prefix="fd-", dir="/tmp"))
    else:
        temp = tmp_path / ("t" * 60) / ("e" * 60)
        temp.mkdir(parents=True)
    dagster = str(Path(sys.executable).with_name("dagster"))
    try:
        done = subprocess.run(
            [dagster, "asset", "materialize", "-f", "definitions.py", "--select", "raw/airlines"],
            cwd=settings.PROJECT_ROOT,
            env={**os.environ, "DAGSTER_HOME": str(home), "TMPDIR": str(temp)},
            capture_output=True,  # returns once every holder of the pipes has closed them
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert "RUN_SUCCESS" in done.stderr + done.stdout
        assert "terminate called" not in done.stderr
        if temp_folder == "short":  # it was started in there (mkdtemp), and is gone with its socket
            assert not list(temp.glob("flightdeck-dbt-*"))
    finally:
        if temp_folder == "short":
            shutil.rmtree(temp, ignore_errors=True)


def test_a_socket_path_too_long_for_the_temp_folder_is_made_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / ("x" * 120)))
    (tmp_path / ("x" * 120)).mkdir()
    path = Path(dbt_launcher.private_socket_path("flightdeck-dbt-", "dbt.sock"))
    try:
        assert path.parent.parent == Path("/tmp") and len(os.fsencode(str(path))) <= 107
        assert path.parent.stat().st_mode & 0o777 == 0o700  # only this user can reach the socket
    finally:
        path.parent.rmdir()


def executes_a_run_says(queue) -> None:
    """In a spawned child: what `executes_a_run` says there (top level: spawn pickles it by name)."""
    queue.put(dbt_launcher.executes_a_run(sys.argv))


def test_a_code_servers_run_process_starts_its_warm_dbt_early_and_the_code_server_does_not(monkeypatch):
    """A code server launches each run in a child it spawns (multiprocessing), which inherits its argv."""
    import multiprocessing

    monkeypatch.setattr(sys, "argv", ["dagster", "api", "grpc", "--lazy-load-user-code"])
    assert not dbt_launcher.executes_a_run(sys.argv)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=executes_a_run_says, args=(queue,))
    child.start()
    assert queue.get(timeout=60) is True
    child.join(timeout=30)


def test_the_run_takes_the_warm_dbt_started_early_for_its_project_and_runs_its_command_there(
    tmp_path, monkeypatch
):
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))
    project, dbt = copy_of_project(tmp_path)
    monkeypatch.setattr(sys, "argv", ["dagster", "api", "execute_run", "{}"])
    dbt_launcher.start_early(str(settings.PROJECT_ROOT / "dbt_project"))  # another project's: not taken
    dbt_launcher.start_early(str(project))
    [(other, other_folder), (early, _)] = dbt_launcher._started_early.values()
    context = dg.build_init_resource_context()
    dbt.setup_for_execution(context)
    try:
        assert dbt._warm is early
        invocation, pids = run_dbt(dbt, project, ["compile", "--select", "stg_flights"], tmp_path / "run")
        assert invocation.is_successful()
        assert pids == {early.pid}
        assert dbt_launcher.take_early(str(project)) is None  # taken once
    finally:
        dbt.teardown_after_execution(context)
        taken = dbt_launcher.take_early(str(settings.PROJECT_ROOT / "dbt_project"))
        assert taken is not None and taken[0] is other
        other.terminate()
        other.wait(timeout=10)
        shutil.rmtree(other_folder, ignore_errors=True)


def test_an_unused_warm_process_ends_with_its_run(tmp_path):
    _, dbt = copy_of_project(tmp_path)
    context = dg.build_init_resource_context()
    dbt.setup_for_execution(context)
    warm, folder = dbt._warm, Path(dbt._warm_dir)
    dbt.teardown_after_execution(context)
    assert warm.poll() is not None
    assert not folder.exists()

    # A run killed outright never tears down: its warm process notices and exits by itself, and removes
    # its socket and folder.
    orphan_folder = tmp_path / "orphan"
    orphan_folder.mkdir()
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from internals.dbt_launcher import start_warm_process; "
            f"print(start_warm_process({str(orphan_folder / 'dbt.sock')!r}, '.').pid, flush=True); "
            "time.sleep(1)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    orphan = int(starter.stdout.readline())
    assert not process_is_gone(orphan)  # serving while its run lives
    starter.wait(timeout=30)
    deadline = time.monotonic() + 15
    while not process_is_gone(orphan) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process_is_gone(orphan)
    assert not orphan_folder.exists()


def test_an_import_a_command_waits_for_leaves_idle_priority():
    """Under load an idle-priority import could wait indefinitely; the waiting command lifts it (or, where
    the system forbids that, runs dbt itself: `serve` declines)."""
    ready, release = threading.Event(), threading.Event()

    def idle_import() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        ready.set()
        release.wait(10)

    importer = threading.Thread(target=idle_import)
    importer.start()
    try:
        assert ready.wait(10)
        assert os.sched_getscheduler(importer.native_id) == os.SCHED_IDLE
        lifted = dbt_launcher.at_normal_priority(importer)
        assert lifted == (os.sched_getscheduler(importer.native_id) == os.SCHED_OTHER)
    finally:
        release.set()
        importer.join()


def test_the_warm_process_prepares_dbt_in_full_and_freezes_it():
    """Every step of the preparation works with the pinned dbt (in the warm process a failed step only
    costs time, so it would go unnoticed there)."""
    probe = (
        "import gc; from internals.dbt_launcher import prepare_dbt; modules = {}; prepare_dbt(modules); "
        "print(callable(modules['cli']), gc.get_freeze_count())"
    )
    out = printed_by_fresh_python(
        probe,
        cwd=settings.PROJECT_ROOT / "dbt_project",  # the warm process reads the saved parse from there
        env={**os.environ, "PYTHONPATH": str(Path(dbt_launcher.__file__).parent.parent)},
    ).split()
    assert out[0] == "True"
    assert int(out[1]) > 100_000


def dbt_events(log: Path) -> list[tuple[str, float]]:
    """(event name, unix time) of every line of an invocation's dbt.log."""
    events = []
    for line in log.read_text().splitlines():
        info = json.loads(line)["info"]
        events.append(
            (info["name"], dt.datetime.fromisoformat(info["ts"].replace("Z", "+00:00")).timestamp())
        )
    return events


class SlowLock:
    """A lock's context manager that takes `wait` s to be taken and records when it was asked for,
    taken and let go."""

    def __init__(self, wait: float):
        self.wait, self.times = wait, {}

    @contextlib.contextmanager
    def __call__(self):
        self.times["asked"] = time.time()
        time.sleep(self.wait)
        self.times["taken"] = time.time()
        try:
            yield
        finally:
            self.times["released"] = time.time()


def warehouse_with_raw_tables() -> None:
    """The raw tables (empty) in the test's warehouse, as the dbt step makes them before dbt runs."""
    import duckdb

    from flightdeck import flight_events
    from flightdeck.datasets import DAILY_DATASETS
    from flightdeck.sql_validation import compile_model
    from flightdeck.warehouse_ddl import ensure_dataset_tables

    con = duckdb.connect(settings.get(settings.DUCKDB_PATH))
    try:
        for dataset in DAILY_DATASETS:
            ensure_dataset_tables(con, dataset.name, compile_model(dataset.model), dataset.partition_column)
        flight_events.ensure_tables(con)
    finally:
        con.close()


def gated_events(log: Path) -> tuple[list[tuple[str, float]], int]:
    """The invocation's events, and the index of the one where dbt arrived at the gate."""
    events, at_gate = [], None
    for line in log.read_text().splitlines():
        event = json.loads(line)
        info = event["info"]
        events.append(
            (info["name"], dt.datetime.fromisoformat(info["ts"].replace("Z", "+00:00")).timestamp())
        )
        if info["name"] == "JinjaLogInfo" and event["data"]["msg"] == dbt_launcher.PUBLISH_GATE_MESSAGE:
            at_gate = len(events) - 1
    assert at_gate is not None, "dbt never arrived at the gate"
    return events, at_gate


def test_a_gated_warm_dbt_builds_then_waits_for_the_lock_where_it_publishes(warm_dbt, tmp_path):
    """The lake's publish lock is taken when dbt is ready to publish (internals/dbt_launcher.py, gate):
    dbt builds its models before (on the lake they are its own, generate_database_name.sql), does nothing
    more until the step holds the lock, and the lock is let go once dbt has ended."""
    project, dbt = warm_dbt
    warehouse_with_raw_tables()
    lock, warm_pid = SlowLock(wait=1.5), dbt._warm.pid
    with dbt_launcher.gate(lock) as gate_env:
        invocation = dbt.cli_with_env(
            ["run", "--select", "stg_flights"], gate_env, manifest=project / "target" / "manifest.json",
            target_path=tmp_path / "gated", raise_on_error=False,
        )  # fmt: skip
        pids = {event.raw_event["info"]["pid"] for event in invocation.stream_raw_events()}
        assert "released" not in lock.times  # held until the block ends
    assert invocation.is_successful() and pids == {warm_pid}
    events, at_gate = gated_events(tmp_path / "gated" / "dbt.log")
    built = next(t for n, t in events if n == "NodeFinished")
    assert built < lock.times["asked"]  # the view was built before the lock was asked for
    assert all(t >= lock.times["taken"] for _, t in events[at_gate + 1 :])  # the rest once it was held
    assert "LogHookEndLine" in {n for n, _ in events[at_gate + 1 :]}  # the publish hook ran then
    assert lock.times["released"] > max(t for _, t in events)
    assert not Path(gate_env[dbt_launcher.GATE_ENV]).parent.exists()  # the gate's socket and folder


def test_a_cold_dbt_passes_the_gate_before_it_starts(tmp_path, monkeypatch):
    """Without a warm process the launcher becomes dbt itself: it waits at the gate first."""
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))
    project, dbt = copy_of_project(tmp_path)  # not set up: no warm process
    lock = SlowLock(wait=1.0)
    with dbt_launcher.gate(lock) as gate_env:
        invocation, pids = run_dbt_with(
            dbt, project, ["compile", "--select", "stg_flights"], tmp_path, gate_env
        )
    assert invocation.is_successful() and pids == {invocation.process.pid}  # the launcher exec'd dbt
    first_event = dbt_events(tmp_path / "behind-gate" / "dbt.log")[0][1]
    assert first_event >= lock.times["taken"]


def test_a_lock_that_is_not_taken_in_time_fails_dbt_before_it_publishes_and_says_why(warm_dbt, tmp_path):
    project, dbt = warm_dbt
    warehouse_with_raw_tables()

    def never_taken():
        raise lake.LakeLockTimeout("the lake's dbt publish lock was held by run r1 for more than 1 s")

    args = ["run", "--select", "stg_flights"]
    with (
        pytest.raises(lake.LakeLockTimeout, match="held by run r1"),
        dbt_launcher.gate(never_taken) as gate_env,
    ):
        invocation, _ = run_dbt_with(dbt, project, args, tmp_path, gate_env)
    assert not invocation.is_successful()
    events, at_gate = gated_events(tmp_path / "behind-gate" / "dbt.log")
    # stopped at the gate: the publish hook never ran, it failed where it asked for the lock
    assert "LogHookStartLine" not in {n for n, _ in events[at_gate:]}


def dbt_event(name: str, msg: str = ""):
    """A dbt event as a callback sees it (its name, and a log line's message)."""
    from types import SimpleNamespace

    return SimpleNamespace(info=SimpleNamespace(name=name), data=SimpleNamespace(msg=msg))


def test_the_gate_tells_dbt_the_step_s_part_of_the_cores_before_each_node_and_at_its_publish():
    """Through the gate's socket dbt asks before each node for the step's part of the host's cores now,
    and gets it again with the lock, into the environment its env_var() reads; it keeps the last answer
    when the step has none."""
    import contextvars

    from dbt_common.context import set_invocation_context

    def command() -> None:
        set_invocation_context({dbt_launcher.THREADS_ENV: "2"})  # handed over at dbt's start
        threads = dbt_launcher.command_environment
        parts = iter(["1", "", "2"])  # another step working, asked while holding no share, alone
        lock = SlowLock(wait=0)
        with dbt_launcher.gate(lock, threads=lambda: next(parts)) as gate_env:
            callback = dbt_launcher.gate_callback(gate_env[dbt_launcher.GATE_ENV])
            callback(dbt_event("NodeStart"))
            assert threads()[dbt_launcher.THREADS_ENV] == "1"
            callback(dbt_event("NodeStart"))
            assert threads()[dbt_launcher.THREADS_ENV] == "1"
            assert "asked" not in lock.times
            callback(dbt_event("JinjaLogInfo", dbt_launcher.PUBLISH_GATE_MESSAGE))
            assert "taken" in lock.times and threads()[dbt_launcher.THREADS_ENV] == "2"
            callback(dbt_event("NodeStart"))  # past the gate: nothing more to ask
        assert threads()[dbt_launcher.THREADS_ENV] == "2"

    contextvars.copy_context().run(command)  # dbt's invocation context stays this test's own


def run_dbt_with(dbt, project: Path, args: list[str], tmp_path: Path, env: dict[str, str]):
    invocation = dbt.cli_with_env(
        args, env, manifest=project / "target" / "manifest.json", target_path=tmp_path / "behind-gate",
        raise_on_error=False,
    )  # fmt: skip
    pids = {event.raw_event["info"]["pid"] for event in invocation.stream_raw_events()}
    return invocation, pids


# The host's dbt server, which runs on the lake share (internals/dbt_launcher.py, serve_host).


def server_forks(server: int) -> set[int]:
    """The server's children that are forks of it (not multiprocessing's resource tracker, say)."""
    forks = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, IndexError):
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().split(") ")[1].split()[1]) == server
                and b"--serve-host" in (entry / "cmdline").read_bytes()
            ):
                forks.add(int(entry.name))
    return forks


def fork_running(server: int, command: subprocess.Popen) -> set[int]:
    """The server's fork running `command`, which waits in it; a clear failure if the command ended or its
    launcher ran dbt itself (the server did not fork)."""

    def found() -> set[int]:
        assert command.poll() is None, ("the command ended", command.communicate())
        with contextlib.suppress(FileNotFoundError):
            assert b"--cold" not in Path(f"/proc/{command.pid}/cmdline").read_bytes(), "ran dbt itself"
        return server_forks(server)

    return wait_until(found, 120, 0.1, what="the server's fork running the command")


@contextlib.contextmanager
def run_held_at_the_gate(project: Path, path: str, server: int):
    """`dbt run` handed to the server, its fork held at the publish gate until `release` is set: yields
    the launcher, the fork and `release`."""
    warehouse_with_raw_tables()
    release = threading.Event()

    @contextlib.contextmanager
    def held_elsewhere():
        release.wait(60)
        yield

    with dbt_launcher.gate(held_elsewhere) as gate_env:
        command = launcher(project, path, ["run", "--select", "stg_flights"], gate_env)
        yield command, fork_running(server, command), release


@pytest.fixture
def host_server(tmp_path, monkeypatch):
    """A resource set up as a run on the lake sets it up: it found (here: started) the host's dbt server
    for its project. The server is stopped after the test rather than left to its idle time."""
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setattr(settings, "dbt_server_idle_seconds", lambda: 60)
    project, dbt = copy_of_project(tmp_path)
    context = dg.build_init_resource_context()
    dbt.setup_for_execution(context)
    assert dbt._server and dbt._warm is None  # no warm process of the run's own
    path = dbt._server
    server = wait_until(lambda: dbt_launcher._answers(path) and dbt_launcher.server_pid(path), 30, 0.1)
    yield project, dbt, path, server
    dbt.teardown_after_execution(context)
    with contextlib.suppress(ProcessLookupError):
        os.kill(server, 15)


def launcher(
    project: Path, path: str, args: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen:
    """dbt `args` as dagster-dbt starts it (the launcher), pointed at the server; its JSON log on stdout."""
    return subprocess.Popen(
        [sys.executable, *LAUNCHER_ARGS, "--log-format", "json", *args],
        cwd=project,
        env={**os.environ, **settings.dbt_env(), dbt_launcher.SOCKET_ENV: path, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_on_the_lake_each_dbt_command_runs_in_a_fork_of_the_host_s_dbt_server(host_server, tmp_path):
    """Commands at once, each in its own fork (its environment, its exit code); the server serves on."""
    project, dbt, path, server = host_server
    marker = "select '{{ env_var(\"FLIGHTDECK_TEST_MARK\") }}' as mark"
    # Each on a warehouse of its own (one DuckDB file has one writer process) and, as each run's dbt,
    # a target folder of its own: commands at once in one folder would write one manifest at once.
    commands = {
        mark: launcher(
            project, path, ["compile", "--target-path", str(tmp_path / mark), "--inline", marker],
            {"FLIGHTDECK_TEST_MARK": mark, settings.DUCKDB_PATH: str(tmp_path / f"{mark}.duckdb")},
        )
        for mark in ("first-command", "second-command")
    }  # fmt: skip
    bad = ["compile", "--inline", "select {{ no_such_macro() }}", "--target-path"]
    failing = launcher(
        project, path, [*bad, str(tmp_path / "failing")], {settings.DUCKDB_PATH: str(tmp_path / "failing.duckdb")}
    )  # fmt: skip
    cold = subprocess.run(
        [sys.executable, dbt_launcher.__file__, "--cold", *bad, str(tmp_path / "cold")],
        cwd=project, env={**os.environ, **settings.dbt_env()}, capture_output=True,
    )  # fmt: skip
    pids = {}
    for mark, command in commands.items():
        out, err = command.communicate(timeout=120)
        assert command.returncode == 0, (out[-2000:], err)
        events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        pids[mark] = {e["info"]["pid"] for e in events}
        assert mark in out and all(other not in out for other in commands if other != mark)
    assert failing.wait(timeout=120) == cold.returncode != 0  # dbt's own exit code
    assert "no_such_macro" in failing.stdout.read() + failing.stderr.read()

    first, second = pids.values()
    assert len(first) == len(second) == 1 and first != second  # one process each
    assert not first & {server, *(c.pid for c in commands.values())}  # a fork: not the server, not exec'd
    assert dbt_launcher.server_pid(path) == server and dbt_launcher._answers(path)  # serving on

    # A run's dbt (the resource's invocation) goes to the same server.
    invocation, run_pids = run_dbt(dbt, project, ["compile", "--select", "stg_flights"], tmp_path / "run")
    assert invocation.is_successful()
    assert not run_pids & {server, invocation.process.pid, *first, *second}


def test_a_command_of_the_host_s_dbt_server_ends_with_its_launcher(host_server, tmp_path):
    """A run stopped with its process group takes its launcher with it: the server's child running the
    command (not in that group) ends too, rather than going on writing for a run that is gone."""
    project, _, path, server = host_server
    with run_held_at_the_gate(project, path, server) as (command, child, release):
        time.sleep(1)
        assert command.poll() is None and all(not process_is_gone(pid) for pid in child)
        command.kill()
        command.wait()
        wait_until(lambda: all(process_is_gone(pid) for pid in child), 10, 0.1)
        release.set()
    assert dbt_launcher._answers(path)


def test_the_host_s_dbt_server_is_started_once_is_not_idle_while_a_command_runs_and_ends_after_its_idle_time(
    tmp_path, monkeypatch
):
    """Idle means no command running: one held longer than the idle time keeps the server serving."""
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))
    project, _ = copy_of_project(tmp_path)
    idle = 2
    path = dbt_launcher.ensure_server(str(project), idle)
    assert path and os.stat(Path(path).parent).st_mode & 0o777 == 0o700  # this user's folder only
    server = wait_until(lambda: dbt_launcher._answers(path) and dbt_launcher.server_pid(path), 30, 0.1)
    assert dbt_launcher.ensure_server(str(project), idle) == path  # found, not started again
    with run_held_at_the_gate(project, path, server) as (command, _, release):
        time.sleep(idle + 2 * dbt_launcher.SERVER_POLL_SECONDS)
        assert dbt_launcher.server_pid(path) == server and dbt_launcher._answers(path)
        release.set()
        out, err = command.communicate(timeout=120)
        assert command.returncode == 0, (out[-2000:], err)
    wait_until(lambda: process_is_gone(server), 30, 0.1)  # its idle seconds after the command's end
    assert not Path(path).exists()
    # A zombie is gone to process_is_gone; its lock is let go once its last thread has exited too.
    wait_until(lambda: dbt_launcher.server_pid(path) is None, 10, 0.1)


def test_without_a_private_folder_for_the_server_a_run_starts_its_own_warm_dbt(tmp_path, monkeypatch):
    """A server folder that is not this user's alone (made by someone else, or opened up) is not used."""
    short = Path(tempfile.mkdtemp(prefix="fd-", dir="/tmp"))  # a socket path must stay short
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    shared = short / dbt_launcher.SERVER_SOCKET_FOLDER.format(uid=os.getuid())
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    monkeypatch.setattr(settings, "dbt_server_idle_seconds", lambda: 60)
    _, dbt = copy_of_project(tmp_path)
    context = dg.build_init_resource_context()
    dbt.setup_for_execution(context)
    try:
        assert dbt._server is None and dbt._warm is not None and dbt._warm.poll() is None
        assert list(shared.iterdir()) == []
    finally:
        dbt.teardown_after_execution(context)
        shutil.rmtree(short)
