"""The dbt CLI resource, pointed at dbt_project/ and at the dbt installed beside this interpreter."""

import sys
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path

from dagster_dbt import DbtCliResource
from packaging import version

from resources import settings


class FlightdeckDbtCli(DbtCliResource):
    """DbtCliResource that knows its dbt version without asking and builds no in-process adapter.

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


def build_dbt_resource() -> FlightdeckDbtCli:
    settings.apply_defaults()  # the profile reads FLIGHTDECK_DUCKDB_PATH from the environment
    dbt_executable = Path(sys.executable).parent / "dbt"
    return FlightdeckDbtCli(
        project_dir=str(settings.DBT_PROJECT_DIR),
        profiles_dir=str(settings.DBT_PROJECT_DIR),
        dbt_executable=str(dbt_executable) if dbt_executable.exists() else "dbt",
    )
