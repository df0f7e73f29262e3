"""The dbt CLI resource, pointed at dbt_project/ and at the dbt installed beside this interpreter."""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from flightdeck import settings
from internals import dbt_launcher, enabled
from internals.dagster_dbt_without_core import DbtCliInvocation, DbtProject
from internals.lean_dbt_cli import dbt_cli_base

# dagster-dbt names an asset invocation's target folder <op>-<run id[:7]>-<random 7 hex>.
INVOCATION_FOLDER = re.compile(r".+-[0-9a-f]{7}-[0-9a-f]{7}")
KEPT_INVOCATION_FOLDERS = 20
# dagster-dbt starts `<dbt_executable> <global_config_flags> <command>`: with a warm dbt (internals/), the
# launcher, which hands the command to the run's warm dbt process or becomes dbt itself
# (internals/dbt_launcher.py says why); without, the dbt installed beside this interpreter.
LAUNCHER_ARGS = ["-I", "-S", dbt_launcher.__file__]
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt")

# The dbt project and its manifest, the dagster-dbt way. Its manifest is built by `make install`
# (`dbt parse`); `prepare_if_dev()` is not called, as it would parse the project again each time
# `dagster dev` loads the definitions (after a dbt edit: `make install`, then reload).
DBT_PROJECT = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)


class FlightdeckDbtCli(dbt_cli_base()):
    """dagster-dbt's dbt resource for runs: passes environment variables (the warehouse, the window) to
    the dbt process, starts a warm dbt process when the run sets up (internals/dbt_launcher.py), keeps
    dbt's parse state and prunes old folders. Built on the lean resource of internals/ while it is on.
    """

    _warm: subprocess.Popen | None = PrivateAttr(default=None)
    _warm_dir: str | None = PrivateAttr(default=None)
    _server: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Start the warm dbt process while the run's first steps work (internals/dbt_launcher.py)."""
        pinned = pinned_dbt_config()
        swapped = [name for name, value in pinned.items() if getattr(self, name) != value]
        if swapped:  # a launchpad's run config must not choose what a run executes
            raise dg.Failure(
                description=f"dbt resource settings {swapped} cannot be set in a run's configuration; "
                "they are fixed by the deployment (resources/dbt.py)",
                allow_retries=False,
            )
        super().setup_for_execution(context)
        if self.dbt_executable != sys.executable:  # dbt itself, not the launcher: no warm process
            return
        idle = settings.dbt_server_idle_seconds()
        if idle:  # on the lake: the host's dbt server, shared with the runs working beside this one
            self._server = dbt_launcher.ensure_server(self.project_dir, idle)
            if self._server:
                return
        early = dbt_launcher.take_early(self.project_dir)  # started when this process began (definitions.py)
        if early is not None:
            self._warm, self._warm_dir = early
            return
        try:
            path = dbt_launcher.private_socket_path("flightdeck-dbt-", "dbt.sock")
        except OSError as exc:  # the launcher finds no warm process and becomes dbt itself
            context.log.warning(f"dbt starts cold in this run: {exc}")
            return
        self._warm_dir = os.path.dirname(path)
        self._warm = dbt_launcher.start_warm_process(path, self.project_dir)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warm is not None and self._warm.poll() is None:  # never used, or still finishing
            self._warm.terminate()
            try:
                self._warm.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._warm.kill()
                self._warm.wait()
        if self._warm_dir:
            shutil.rmtree(self._warm_dir, ignore_errors=True)

    @property
    def uses_launcher(self) -> bool:
        """dbt starts through internals/dbt_launcher.py, which passes a step's gate (its `gate`)."""
        return self.dbt_executable == sys.executable and self.global_config_flags == LAUNCHER_ARGS

    @property
    def _warm_socket(self) -> str:
        return os.path.join(self._warm_dir or "", "dbt.sock")

    @property
    def _target_dir(self) -> Path:
        """Where `make install`'s parse lives and dagster-dbt puts each invocation's folder."""
        return Path(self.project_dir) / "target"

    def cli_with_env(self, args: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> DbtCliInvocation:
        """`cli` with extra environment variables for the dbt process.

        dagster-dbt gives the process a copy of this process's environment and takes no `env` argument,
        so the variables are set only while the process is started, then restored.
        """
        env = {**settings.dbt_env(), **env}  # the warehouse dbt's profile opens
        if self._server:
            env = {**env, dbt_launcher.SOCKET_ENV: self._server}
        elif self._warm is not None and self._warm.poll() is None:
            env = {**env, dbt_launcher.SOCKET_ENV: self._warm_socket}
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            return self.cli(args, **kwargs)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def keep_parse_state(self, invocation: DbtCliInvocation) -> None:
        """Make a finished invocation's parse the starting point of the next one.

        dagster-dbt starts every invocation from `target/partial_parse.msgpack`, written by `make install`.
        dbt discards it and re-parses everything (~3 s) when the profile differs from then in more than
        where the warehouse is (internals/dbt_launcher.py): the DuckLake instead of the file, a warehouse
        file of another name, dbt started without the launcher. Keeping the latest state avoids that from
        the second run on. dbt checks the
        state itself (files, profile, vars), so a stale copy costs a re-parse, never a wrong result; the
        replace is atomic, so concurrent runs leave one valid copy.
        """
        latest = invocation.target_path / "partial_parse.msgpack"
        if not latest.exists():
            return
        kept = self._target_dir / "partial_parse.msgpack"
        staged = kept.with_name(f".partial_parse.{os.getpid()}.msgpack")
        shutil.copyfile(latest, staged)
        os.replace(staged, kept)

    def prune_invocation_folders(self, keep: int = KEPT_INVOCATION_FOLDERS) -> None:
        """Keep the newest `keep` invocation folders under target/, remove older ones.

        dagster-dbt gives every invocation its own folder (~1.6 MB: compiled SQL, log, parse state) and
        never removes one; a sensor-driven deployment would grow by hundreds a year. The newest
        stay for debugging a run; the run's own events and logs are in Dagster.
        """
        folders = []
        for entry in os.scandir(self._target_dir):
            if entry.is_dir() and INVOCATION_FOLDER.fullmatch(entry.name):
                try:
                    folders.append((entry.stat().st_mtime, entry.path))
                except FileNotFoundError:  # removed meanwhile by another run's prune
                    continue
        for _, path in sorted(folders, reverse=True)[keep:]:
            shutil.rmtree(path, ignore_errors=True)


def pinned_dbt_config() -> dict[str, Any]:
    """What dbt runs and where: set here, never by a run's configuration (checked at set-up)."""
    return {
        "project_dir": str(settings.DBT_PROJECT_DIR),
        "profiles_dir": str(settings.DBT_PROJECT_DIR),
        **(
            {"dbt_executable": sys.executable, "global_config_flags": LAUNCHER_ARGS}
            if enabled("warm_dbt")
            else {"dbt_executable": DBT_EXECUTABLE, "global_config_flags": []}
        ),
        "profile": None,
        "target": None,
        "state_path": None,
    }


def build_dbt_resource() -> FlightdeckDbtCli:
    config = {k: v for k, v in pinned_dbt_config().items() if v is not None}
    return FlightdeckDbtCli(**{**config, "project_dir": DBT_PROJECT})
