"""A dbt process that is already warm when the dbt step starts.

Why: dagster-dbt runs every dbt command as a new process, and a new interpreter spends ~1.5 s importing
dbt-core before it reads a single file (measured: `import dbt.cli.main` 1.6 s of a 6.5 s `dbt build` on
the 10x year). Neither dagster-dbt nor dbt offers a warm or reusable process, so this module provides one,
and changes nothing else: the command, its arguments, environment, working directory, output (dbt's JSON
log lines on the same pipe, which dagster-dbt turns into events) and exit code are exactly dbt's own.

- `serve` (started by the dbt resource when a run sets up, resources/dbt.py) imports and prepares dbt
  (`prepare_dbt`) while the run's first steps work, then waits on a Unix socket for one command.
- `launch` is what dagster-dbt starts as its "dbt executable" (`python -I -S dbt_launcher.py <args>`: the
  standard library only, ~20 ms). It hands the warm process its argv, environment, working directory and
  its own stdout/stderr (file descriptors over the socket), forwards SIGINT/SIGTERM to it and exits with
  dbt's exit code. Without a warm process (none started, already used, or gone) it becomes dbt itself
  (`exec`), as if this module did not exist.

Where the warehouse is does not count as a change of the project (`keep_parse_across_warehouses`): dbt
re-parses the whole project when its profile's connection values differ from the saved parse's, so every
run on another warehouse path (a new data dir, each test's own folder, another lake catalog) paid a full
parse. Both the warm process and a cold launch leave the warehouse's location out of that comparison.

The gate (`gate`, on a DuckLake): a build is dbt's own until it publishes (its models live in dbt's
in-memory database, dbt_project/macros/generate_database_name.sql), so a step need hold the lake's
publish lock only while dbt publishes. It names a socket in $FLIGHTDECK_DBT_GATE; dbt stops where the
project's publish says it is about to read or write the lake (`PUBLISH_GATE_MESSAGE`, logged first thing
by macros/publish_marts.sql) until the step holds the lock and lets it through. A launcher that runs dbt
cold passes the gate before it becomes dbt, so dbt never publishes unlocked; with the warm dbt switched
off (no launcher) the step takes the lock first.

One command per warm process: dbt keeps state between commands in a process (flags, adapters), so each
command gets an interpreter that has run no other command (its preparation fills per-class caches only).
The warm process exits when its command ends, when its parent (the run) is gone, or after
`MAX_IDLE_SECONDS`.

On the lake, runs work at the same time and a run's own warm process imports dbt on CPU the others are
using, so there the runs of a host share one dbt server per project (`ensure_server`, `serve_host`): it
imports and prepares dbt once, then forks a child per command, which has run no other command either.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import gc
import hashlib
import importlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SOCKET_ENV = "FLIGHTDECK_DBT_WARM_SOCKET"
GATE_ENV = "FLIGHTDECK_DBT_GATE"
# DuckDB's threads for dbt, the dbt step's part of the host's cores (macros/share_host_cores.sql).
THREADS_ENV = "FLIGHTDECK_DUCKDB_THREADS"
# What dbt_project/macros/publish_marts.sql logs (dbt's JinjaLogInfo event) before anything else it does.
PUBLISH_GATE_MESSAGE = "flightdeck: ready to publish"
GATE_POLL_SECONDS = 0.2
# Past this, a run that has not reached its dbt step gets a cold dbt (each step before it is bounded by
# FLIGHTDECK_STEP_TIMEOUT_SECONDS, 30 min by default).
MAX_IDLE_SECONDS = 6 * 3600
PARENT_POLL_SECONDS = 0.5


def launch(argv: list[str]) -> int:
    """Run dbt `argv` in the warm process named by $FLIGHTDECK_DBT_WARM_SOCKET, or exec dbt itself."""
    path = os.environ.get(SOCKET_ENV)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not path:
            raise FileNotFoundError(SOCKET_ENV)
        conn.connect(path)
        request = {"argv": argv, "env": dict(os.environ), "cwd": os.getcwd(), "launcher": os.getpid()}
        message = json.dumps(request).encode() + b"\n"
        sent = socket.send_fds(conn, [message], [1, 2])
        conn.sendall(message[sent:])
        replies = conn.makefile("rb")
        warm_pid = json.loads(replies.readline())["pid"]
    except (OSError, ValueError, KeyError):  # no warm process to hand over to: be dbt
        conn.close()
        if os.environ.get(GATE_ENV):
            try:
                pass_gate(os.environ[GATE_ENV])  # the whole cold dbt, start-up included, behind it
            except (OSError, RuntimeError) as exc:
                print(f"flightdeck: dbt was not let through its gate: {exc}", file=sys.stderr, flush=True)
                return 2
        # `python dbt_launcher.py --cold <args>`: dbt's own entry point, as the dbt script runs it, with the
        # parse check this module adjusts (and the site-packages that -S left out).
        os.execv(sys.executable, [sys.executable, __file__, "--cold", *argv])

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):  # a step timeout repeats its stop every second
            os.kill(warm_pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    try:
        return int(json.loads(replies.readline())["exit_code"])
    except (OSError, ValueError, KeyError):
        # The warm process died without reporting (killed): fail the command, as a killed dbt would.
        print("flightdeck: the warm dbt process ended without an exit code", file=sys.stderr, flush=True)
        return 1


# What `dbt build` imports only when it runs (measured: the modules new in sys.modules after a build).
MODULES_A_BUILD_IMPORTS = (
    "dbt.task.build",
    "dbt.compilation",
    "dbt.parser.sql",
    "dbt.adapters.duckdb.impl",
    "dbt_common.clients.agate_helper",
    "multiprocessing.dummy",
    "sqlparse",
)
# Configurations dbt validates on every command against a JSON schema it builds the first time in a
# process (~0.2 s for these; dbtClassMixin.json_schema is cached per class).
VALIDATED_CONFIGS = (
    ("dbt.contracts.project", ("ProjectFlags", "ProfileConfig", "Project", "PackageConfig", "Configuration")),
    ("dbt.contracts.selection", ("SelectorFile",)),
    ("dbt.adapters.duckdb.credentials", ("DuckDBCredentials",)),
    ("dbt.task.test", ("TestResultData",)),
)
PARTIAL_PARSE_FILE = Path("target") / "partial_parse.msgpack"


# What the profile says about where the warehouse is (dbt-duckdb's connection values), as against what
# dbt builds: the database and schema names, settings and extensions stay in dbt's check.
WAREHOUSE_LOCATION_KEYS = ("path",)
ATTACHMENT_LOCATION_KEYS = ("path", "options")


def keep_parse_across_warehouses() -> None:
    """Compare a saved parse with the profile's values without where the warehouse is.

    Why: dbt keeps a parse only while a hash of every connection value of the profile is unchanged
    (`ManifestLoader.build_manifest_state_check`, dbt-core 1.11), because jinja can read them while it
    parses; dbt-duckdb's include the database file's path and each attachment's path and options. This
    project reads none of them at parse (names come from `database`, which stays in the hash), so its
    parse does not depend on them; without this every new warehouse path re-parsed the project (~2.5 s).
    A project that reads `target.path` at parse time must not use it (FLIGHTDECK_WARM_DBT=false).
    """
    import pprint

    from dbt.contracts.files import FileHash
    from dbt.parser.manifest import ManifestLoader

    build_state_check = ManifestLoader.build_manifest_state_check
    if getattr(build_state_check, "keeps_parse_across_warehouses", False):
        return

    def build_manifest_state_check(loader):
        state_check = build_state_check(loader)
        values = []
        for key, value in loader.root_project.credentials.connection_info():
            if key in WAREHOUSE_LOCATION_KEYS:
                continue
            if key == "attach" and value:
                value = [{k: v for k, v in a.items() if k not in ATTACHMENT_LOCATION_KEYS} for a in value]
            values.append((key, value))
        state_check.profile_hash = FileHash.from_contents(pprint.pformat(sorted(values)))
        return state_check

    build_manifest_state_check.keeps_parse_across_warehouses = True
    ManifestLoader.build_manifest_state_check = build_manifest_state_check


def run_cold(argv: list[str]) -> int:
    """dbt `argv` in this process, as the dbt script runs it, with `keep_parse_across_warehouses`."""
    _leave_own_folder_off_sys_path()
    from dbt.cli.main import cli

    keep_parse_across_warehouses()
    try:
        cli(args=argv, prog_name="dbt")
    except SystemExit as exc:
        return exit_code_of(exc)
    return 0


def exit_code_of(exc: SystemExit) -> int:
    """The code a process ending with `exc` exits with (click ends every command with sys.exit(code))."""
    return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)


def _leave_own_folder_off_sys_path() -> None:
    # Run as a script, this file's folder (internals/) leads sys.path; keep it from shadowing packages.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]


def prepare_dbt(modules: dict[str, object], command_waiting: threading.Event | None = None) -> None:
    """Import dbt and pay ahead what any dbt command pays once per process, then freeze it all.

    Besides the import (~1.2 s): the modules a build imports late, the JSON schemas of the configurations
    dbt validates and the (de)serializers mashumaro generates when the saved parse is first read (by
    reading it, from the project folder, the working directory). Together ~0.4 s off the command. Frozen
    (`gc.freeze()`), the collector never scans these objects again: not while the command runs, nor when
    the process exits (~0.45 s of collections at exit, before dagster-dbt sees the output end). Once a
    command waits, the saved parse is not read here: the command reads it anyway.
    """
    saved_parse = PARTIAL_PARSE_FILE.resolve()  # now: the command changes the working directory later
    from dbt.cli.main import cli

    modules["cli"] = cli
    keep_parse_across_warehouses()
    for name in MODULES_A_BUILD_IMPORTS:
        importlib.import_module(name)
    for module, names in VALIDATED_CONFIGS:
        for name in names:
            getattr(importlib.import_module(module), name).json_schema()
    if saved_parse.exists() and not (command_waiting and command_waiting.is_set()):
        from dbt.contracts.graph.manifest import Manifest
        from dbt.parser.manifest import extended_mashumuro_decoder

        Manifest.from_msgpack(saved_parse.read_bytes(), decoder=extended_mashumuro_decoder)
    gc.freeze()


def _prepare_dbt_at_idle_priority(modules: dict[str, object], command_waiting: threading.Event) -> None:
    if hasattr(os, "SCHED_IDLE"):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        prepare_dbt(modules, command_waiting)
    except Exception:  # only time is lost: the command prepares whatever is missing itself
        if "cli" not in modules:
            raise


def at_normal_priority(thread: threading.Thread) -> bool:
    """Give the idle-priority import thread normal priority once its command waits for it.

    Linux lets a thread leave SCHED_IDLE only within RLIMIT_NICE (or with CAP_SYS_NICE); False when not.
    """
    try:
        os.sched_setscheduler(thread.native_id, os.SCHED_OTHER, os.sched_param(0))
        return True
    except (OSError, AttributeError):
        return not thread.is_alive()


def _ask_gate(path: str, request: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(request + b"\n")
        return conn.makefile("rb").readline().decode().strip()


def pass_gate(path: str) -> str:
    """Say at the step's gate that dbt is about to publish, and return once the step lets it through,
    with the step's part of the host's cores then ("" when it holds no share)."""
    answer = _ask_gate(path, b"ready")
    if answer.split(" ")[0] != "go":
        raise RuntimeError(answer.removeprefix("fail ") or "the step went away")
    return answer.removeprefix("go").strip()


def gate_callback(path: str):
    """A dbt event callback that passes the gate where the publish begins, once; and before each node
    and at the publish, puts the step's part of the host's cores now in the command's $FLIGHTDECK_DUCKDB_
    THREADS, where macros/share_host_cores.sql reads it (a pre-hook of every model, and the publish), so
    a build that started beside other work takes the cores they leave."""
    passed = False

    def share_host_cores(threads: str) -> None:
        if threads:
            command_environment()[THREADS_ENV] = threads

    def callback(event) -> None:
        nonlocal passed
        if passed:
            return
        if event.info.name == "NodeStart":
            with contextlib.suppress(OSError):  # the step's answer is an optimisation: keep the last one
                share_host_cores(_ask_gate(path, b"threads"))
        elif event.info.name == "JinjaLogInfo" and event.data.msg == PUBLISH_GATE_MESSAGE:
            passed = True
            share_host_cores(pass_gate(path))

    return callback


def command_environment() -> dict[str, str]:
    """The environment dbt's env_var() reads for the running command: not os.environ but the copy dbt
    takes when a command starts (dbt_common.context, the invocation context, dbt-core 1.8 and later)."""
    from dbt_common.context import get_invocation_context

    return get_invocation_context().env


# Linux's limit on a Unix socket's path (sun_path: 108 bytes with the terminating NUL).
MAX_SOCKET_PATH_BYTES = 107


def private_socket_path(prefix: str, name: str) -> str:
    """`name` in a new folder only this user can open: in the temp folder, or in /tmp when that path
    would be too long for a Unix socket (a long TMPDIR). OSError when neither can hold it."""
    for parent in (None, "/tmp"):
        try:
            folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
        except OSError:
            continue
        path = os.path.join(folder, name)
        if len(os.fsencode(path)) <= MAX_SOCKET_PATH_BYTES:
            return path
        os.rmdir(folder)
    raise OSError(
        f"no temp folder gives a Unix socket path of at most {MAX_SOCKET_PATH_BYTES} bytes "
        f"(TMPDIR is {tempfile.gettempdir()!r})"
    )


@contextlib.contextmanager
def gate(acquire, threads=lambda: None):
    """The step's side: yields the environment that points dbt at the gate; when dbt arrives, enters
    `acquire()` (a lock's context manager) and lets it through; leaves it when the block ends. An error
    of `acquire()` (a lock wait that timed out) is told to dbt, which fails, and raised here. Until then
    it also answers dbt's questions for `threads()`, the step's part of the host's cores now."""
    path = private_socket_path("flightdeck-gate-", "gate.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(GATE_POLL_SECONDS)
    stack, done, state = contextlib.ExitStack(), threading.Event(), {}

    def keep() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(None)
                request = conn.makefile("rb").readline().strip()
                if request == b"threads":
                    with contextlib.suppress(OSError):
                        conn.sendall(f"{threads() or ''}\n".encode())
                    continue
                if request != b"ready":
                    continue  # not dbt (a stray connection): keep the gate
                try:
                    stack.enter_context(acquire())
                except BaseException as exc:
                    state["error"] = exc
                    with contextlib.suppress(OSError):
                        conn.sendall(f"fail {str(exc).splitlines()[0][:500]}\n".encode())
                    return
                if done.is_set():  # the step ended while this waited: let go at once
                    stack.close()
                    return
                with contextlib.suppress(OSError):  # dbt gone meanwhile: the lock is let go below
                    conn.sendall(f"go {threads() or ''}\n".encode())
                return

    keeper = threading.Thread(target=keep, name="flightdeck-dbt-gate", daemon=True)
    keeper.start()
    try:
        yield {GATE_ENV: path}
    finally:
        done.set()
        keeper.join(timeout=2 * GATE_POLL_SECONDS)  # still waiting for a lock: it lets go itself
        listener.close()
        _remove_socket(path)
        if not keeper.is_alive():
            stack.close()
        if "error" in state:
            raise state["error"]


def _remove_socket(path: str) -> None:
    """The socket and its folder, which holds nothing else (made for it by the dbt resource)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
        os.rmdir(os.path.dirname(path))


def start_warm_process(path: str, cwd: str) -> subprocess.Popen:
    """Start a warm dbt process serving `path`; launchers can connect as soon as this returns."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(1)
        # sys.executable runs the dbt installed beside it; the listening socket is passed on, not re-bound.
        return subprocess.Popen(
            [sys.executable, __file__, "--serve", path, str(listener.fileno()), str(os.getpid())],
            pass_fds=[listener.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            cwd=cwd,
        )
    finally:
        listener.close()


# Commands that execute a run in their own process, as Dagster starts them: the run worker of a launched
# run, and the CLI's in-process runs (`dg launch` runs `dagster asset materialize`'s code in `dg`).
RUN_COMMANDS = (("api", "execute_run"), ("asset", "materialize"), ("job", "execute"), ("launch",))
# A code server (`dagster api grpc`) starts each run it is asked to launch in a child process of its own
# (multiprocessing's spawn, which hands the child the server's argv); it starts no other children.
CODE_SERVER = ("api", "grpc")
_started_early: dict[str, tuple[subprocess.Popen, str]] = {}


def executes_a_run(argv: list[str]) -> bool:
    if any(tuple(argv[1 : 1 + len(command)]) == command for command in RUN_COMMANDS):
        return True
    import multiprocessing

    return tuple(argv[1:3]) == CODE_SERVER and multiprocessing.parent_process() is not None


def start_early(project_dir: str, server_idle_seconds: float = 0) -> None:
    """In a process that will execute a run, start its warm dbt process now, before the definitions load.

    Why: the dbt resource sets up only when the run starts, and a daily run's first step is too short to
    hide dbt's import behind; started here, the import runs while this process imports Dagster and loads
    the definitions (one core each). A run without a dbt step leaves it unused: it waits at idle
    priority and ends with this process. The resource takes it (`take_early`) for the same project.
    """
    if project_dir in _started_early or not executes_a_run(sys.argv):
        return
    if server_idle_seconds and ensure_server(project_dir, server_idle_seconds):
        return  # the host's dbt server (on the lake), which the run's dbt resource finds again
    try:
        path = private_socket_path("flightdeck-dbt-", "dbt.sock")
    except OSError:
        return  # the run's dbt resource tries again and says why; dbt then starts cold
    if not _started_early:
        atexit.register(_end_untaken)
    _started_early[project_dir] = (start_warm_process(path, project_dir), os.path.dirname(path))


def _end_untaken() -> None:
    """At this process's exit: end what no run took now, rather than when it notices its parent gone
    (it shares this process's stderr, which whoever started this process may be reading to its end)."""
    for warm, folder in _started_early.values():
        with contextlib.suppress(ProcessLookupError):
            warm.kill()  # it holds nothing: not yet asked for a command
        warm.wait()
        _remove_socket(os.path.join(folder, "dbt.sock"))
    _started_early.clear()


def take_early(project_dir: str) -> tuple[subprocess.Popen, str] | None:
    """The warm process `start_early` started for `project_dir` (its folder holds `dbt.sock`), once."""
    started = _started_early.pop(project_dir, None)
    if started is None or started[0].poll() is not None:
        return None
    return started


def serve(path: str, listener_fd: int, parent: int) -> None:
    """Import dbt, run the one command that arrives on `listener_fd`, report its exit code, exit.

    `parent` is the run's process, named by the starter so that a parent gone before this line runs is
    noticed too.
    """
    _leave_own_folder_off_sys_path()
    listener = socket.socket(fileno=listener_fd)
    # The ~2 s this process exists to pay ahead of time, in a thread that only gets otherwise idle CPU:
    # the run's first step (DuckDB on every core) is not slowed by it. Scheduling policy is per thread
    # on Linux, so the command itself runs at normal priority in the main thread.
    modules: dict[str, object] = {}
    command_waiting = threading.Event()
    importer = threading.Thread(
        target=_prepare_dbt_at_idle_priority, args=(modules, command_waiting), daemon=True
    )
    importer.start()

    listener.settimeout(PARENT_POLL_SECONDS)
    deadline = time.monotonic() + MAX_IDLE_SECONDS
    while True:
        if os.getppid() != parent or time.monotonic() > deadline:
            _remove_socket(path)  # the run is gone (nothing will tear down) or never needed dbt
            # Not the interpreter's exit: the preparing thread may be inside an extension module's import,
            # and a C++ runtime ended under it aborts the process with a message on the run's stderr.
            os._exit(0)
        try:
            conn, _ = listener.accept()
            break
        except TimeoutError:
            continue
    listener.close()
    _remove_socket(path)  # one command per process: later launchers exec dbt themselves
    conn.settimeout(None)
    request, fds = _read_request(conn)
    if request is None:
        os._exit(0)  # asked nothing
    command_waiting.set()
    if importer.is_alive() and not at_normal_priority(importer):
        # Other processes keep the CPU busy and an idle-priority import may not finish for a long time:
        # the launcher runs dbt itself instead (a reply without a pid).
        conn.sendall(b"{}\n")
        os._exit(0)  # with the import still running (see above)
    importer.join()
    _run_command(conn, request, fds, modules)


def _read_request(conn: socket.socket) -> tuple[dict, list[int]] | tuple[None, None]:
    """A launcher's request and the descriptors it handed over; (None, None) for a connection that
    asked nothing (`_answers`, or a launcher gone)."""
    message, fds, _, _ = socket.recv_fds(conn, 1 << 16, 2)
    while message and not message.endswith(b"\n"):  # a large environment arrives in more than one read
        more = conn.recv(1 << 16)
        if not more:
            raise ConnectionError("the launcher went away before its request was complete")
        message += more
    if not message:
        for fd in fds:
            os.close(fd)
        return None, None
    return json.loads(message), fds


def _run_command(conn: socket.socket, request: dict, fds: list[int], modules: dict[str, object]) -> None:
    """Run the request's dbt command in this process, as its launcher's dbt, and report its exit code."""
    conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)  # each log line reaches dagster-dbt as dbt writes it
    sys.argv = ["dbt", *request["argv"]]
    try:
        gated = request["env"].get(GATE_ENV)
        # dbt's own way to hand a command callbacks (what dbtRunner does): ctx.obj["callbacks"].
        obj = {"callbacks": [gate_callback(gated)]} if gated else None
        modules["cli"](args=request["argv"], prog_name="dbt", obj=obj)
        exit_code = 0
    except SystemExit as exc:  # click ends every command with sys.exit(code), as the dbt script does
        exit_code = exit_code_of(exc)
    except BaseException:  # an interrupt (SIGINT), a failed import or a crash dbt did not handle
        import traceback

        traceback.print_exc()
        exit_code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    conn.sendall(json.dumps({"exit_code": exit_code}).encode() + b"\n")
    conn.close()


# The host's dbt server, on the lake (`ensure_server`, `serve_host`). Runs on a lake work at the same time,
# and each run's own warm process (above) imports dbt on CPU its neighbours are using: dbt's import is
# most of a dbt command's fixed cost. One long-lived process per project and code version on the host
# imports dbt once and forks a child per command: the child starts with dbt imported and prepared, and
# has run no other command (what a run's own warm process guarantees too). It exits after an idle time.
SERVER_SOCKET_FOLDER = "flightdeck-dbt-{uid}"
SERVER_POLL_SECONDS = 0.5
# A connection that has not sent its request in this time is dropped (it holds up the next command).
REQUEST_TIMEOUT_SECONDS = 10


def server_socket_path(project_dir: str) -> str | None:
    """Where the host's dbt server for `project_dir` and this code listens: in a folder only this user
    can open (None when the folder exists with another owner or wider access, or no short path fits).
    Named by this interpreter, the project, dbt's version and this file, so changed code gets its own."""
    name = _server_socket_name(os.path.realpath(project_dir))
    for parent in dict.fromkeys((tempfile.gettempdir(), "/tmp")):
        folder = os.path.join(parent, SERVER_SOCKET_FOLDER.format(uid=os.getuid()))
        path = os.path.join(folder, name)
        if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
            continue
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass
        except OSError:
            continue
        found = os.lstat(folder)
        if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o077:
            return None  # not this user's own: another user could put a server there
        return path
    return None


@functools.cache  # asked at a run's start and again when its dbt resource sets up
def _server_socket_name(project_dir: str) -> str:
    from importlib.metadata import version

    key = "\0".join([sys.executable, project_dir, version("dbt-core"), str(os.stat(__file__).st_mtime_ns)])
    return hashlib.sha256(key.encode()).hexdigest()[:20] + ".sock"


def server_pid(path: str) -> int | None:
    """The process serving `path`, or None when none is."""
    with contextlib.suppress(OSError, ValueError), open(path + ".lock") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return int(lock.read())
        fcntl.flock(lock, fcntl.LOCK_UN)
    return None


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
            return True
        except OSError:
            return False


def ensure_server(project_dir: str, idle_seconds: float) -> str | None:
    """The socket of the host's dbt server for `project_dir`, started now (in a session of its own, so
    that it outlives this process) unless one answers. None when there can be none (`server_socket_path`):
    the caller starts a warm process of its own."""
    path = server_socket_path(project_dir)
    if path is None or _answers(path):
        return path
    subprocess.Popen(
        [sys.executable, __file__, "--serve-host", path, str(idle_seconds)],
        cwd=project_dir,
        # Each command brings its own environment; the server keeps none of this run's settings (a
        # catalog's password among them) for its life.
        env={name: value for name, value in os.environ.items() if not name.startswith("FLIGHTDECK_")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return path


def serve_host(path: str, idle_seconds: float) -> None:
    """The host's dbt server: listens on `path`, imports and prepares dbt at idle priority, then forks a
    child per command; exits once no command has run for `idle_seconds`, or `path` is no longer its socket."""
    _leave_own_folder_off_sys_path()
    lock = open(path + ".lock", "a")  # noqa: SIM115 - held for the server's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another server for this path is starting or serving
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")  # who serves: `server_pid`
    lock.flush()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # a server that was killed left it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    own = os.stat(path).st_ino
    modules: dict[str, object] = {}
    importer = threading.Thread(
        target=_prepare_dbt_at_idle_priority, args=(modules, threading.Event()), daemon=True
    )
    importer.start()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
    listener.settimeout(SERVER_POLL_SECONDS)
    last_command = time.monotonic()
    running: list[int] = []  # pidfds of the children still running a command: the server is not idle
    grace_seconds = 2.0
    while _is_socket(path, own):
        if running:
            for handle in select.select(running, [], [], 0)[0]:  # readable: that child has ended
                os.close(handle)
                running.remove(handle)
            if not running:
                last_command = time.monotonic()  # idle from the end of the last command
        if not running and time.monotonic() - last_command >= idle_seconds:
            break
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        with conn:
            conn.settimeout(REQUEST_TIMEOUT_SECONDS)
            try:
                request, fds = _read_request(conn)
            except (OSError, ValueError):
                continue
            if request is None:
                continue
            fds = fds or []
            last_command = time.monotonic()
            try:
                if importer.is_alive() and not at_normal_priority(importer):
                    conn.sendall(b"{}\n")  # the launcher runs dbt itself (see serve)
                    continue
                importer.join()
                can_fork = "cli" in modules and _single_threaded(grace_seconds)
                grace_seconds = 0.0  # only the import thread, just joined, can still be leaving
                if not can_fork:
                    conn.sendall(b"{}\n")  # it cannot fork safely: the launcher runs dbt itself
                    continue
                child = os.fork()
                if child == 0:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    listener.close()
                    lock.close()
                    for handle in running:
                        os.close(handle)
                    conn.settimeout(None)
                    _end_with(request.get("launcher"))
                    _run_command(conn, request, fds, modules)
                    os._exit(0)
                with contextlib.suppress(OSError, AttributeError):  # gone already, or no pidfd here
                    running.append(os.pidfd_open(child))
            except OSError:
                continue  # the launcher went away: it ran nothing
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
    if _is_socket(path, own):
        os.unlink(path)
    os._exit(0)  # not the interpreter's exit: see serve


def _single_threaded(grace_seconds: float) -> bool:
    """Whether this process has one thread, and so can fork: importing duckdb (dbt-duckdb does) starts a
    worker thread for DuckDB's default connection, which dbt never uses; closing it ends that thread.
    A thread just joined or closed can still be leaving the kernel on a busy machine: it is given
    `grace_seconds`, which the server gives at its first command only, so that a thread that stays does
    not cost every command the wait."""
    duckdb = sys.modules.get("duckdb")
    if duckdb is not None and len(os.listdir("/proc/self/task")) > 1:
        duckdb.default_connection().close()
    deadline = time.monotonic() + grace_seconds
    while len(os.listdir("/proc/self/task")) > 1:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _is_socket(path: str, inode: int) -> bool:
    try:
        return os.stat(path).st_ino == inode
    except OSError:
        return False


def _end_with(launcher: int | None) -> None:
    """End this process when `launcher` ends: a server's child is not in its run's process group, so a
    run stopped with its group (or a launcher killed) must not leave its dbt command running."""
    if not launcher:
        return
    try:
        handle = os.pidfd_open(launcher)
    except ProcessLookupError:
        os._exit(1)
    except (OSError, AttributeError):
        return  # no pidfd here: the launcher's forwarded signals still reach this process

    def watch() -> None:
        select.select([handle], [], [])
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="flightdeck-dbt-launcher-watch", daemon=True).start()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1:2] == ["--serve-host"]:
        serve_host(sys.argv[2], float(sys.argv[3]))
    elif sys.argv[1:2] == ["--cold"]:
        sys.exit(run_cold(sys.argv[2:]))
    else:
        sys.exit(launch(sys.argv[1:]))
