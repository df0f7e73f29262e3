"""The dbt CLI resource, pointed at dbt_project/ and at the dbt installed beside this interpreter."""

import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliInvocation, DbtCliResource
from packaging import version

from resources import settings

# dagster-dbt names an asset invocation's target folder <op>-<run id[:7]>-<random 7 hex>.
INVOCATION_FOLDER = re.compile(r".+-[0-9a-f]{7}-[0-9a-f]{7}")
KEPT_INVOCATION_FOLDERS = 20


class FlightdeckDbtCli(DbtCliResource):
    """DbtCliResource tuned for runs: knows its dbt version without asking, builds no in-process adapter,
    passes environment variables to the dbt process, keeps dbt's parse state and prunes old folders.

    dagster-dbt runs `dbt --version` in a subprocess each time the resource is built (once per run) to
    tell dbt-core from dbt Fusion; that costs 2-8 s a run. Our dbt is always the dbt-core pinned in
    uv.lock and installed beside this interpreter, so its version is read from the package metadata.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        # dagster-dbt builds a dbt adapter in the run's own process before every invocation (~3 s here)
        # only to serve `fetch_row_counts()` / `fetch_column_metadata()`, which flightdeck does not use:
        # row counts come from the loads themselves. Without it those two are unavailable, nothing else.
        return None

    @property
    def _target_dir(self) -> Path:
        """Where `make install`'s parse lives and dagster-dbt puts each invocation's folder."""
        return Path(self.project_dir) / "target"

    def cli_with_env(self, args: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> DbtCliInvocation:
        """`cli` with extra environment variables for the dbt process.

        dagster-dbt gives the process a copy of this process's environment and takes no `env` argument,
        so the variables are set only while the process is started, then restored.
        """
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
        dbt discards it and re-parses everything (~3-4 s) when the profile differs from then, e.g. another
        FLIGHTDECK_DUCKDB_PATH. Keeping the latest state avoids that from the second run on. dbt checks the
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

        dagster-dbt gives every invocation its own folder (~2 MB: manifest, run results, compiled SQL,
        log) and never removes one; a sensor-driven deployment would grow by hundreds a year. The newest
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


def build_dbt_resource() -> FlightdeckDbtCli:
    settings.apply_defaults()  # the profile reads FLIGHTDECK_DUCKDB_PATH from the environment
    dbt_executable = Path(sys.executable).parent / "dbt"
    return FlightdeckDbtCli(
        project_dir=str(settings.DBT_PROJECT_DIR),
        profiles_dir=str(settings.DBT_PROJECT_DIR),
        dbt_executable=str(dbt_executable) if dbt_executable.exists() else "dbt",
    )
