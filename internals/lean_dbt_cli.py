"""dagster-dbt's `DbtCliResource` without its two per-run costs, by overriding two of its private methods.

dagster-dbt runs `dbt --version` in a subprocess each time the resource is built (once per run) to tell
dbt-core from dbt Fusion, and builds a dbt adapter in the run's own process before every invocation only
to serve `fetch_row_counts()` / `fetch_column_metadata()`, which flightdeck does not use. Our dbt is
always the dbt-core pinned in uv.lock, so its version is read from the package metadata, and no adapter
is built. Part `dbt_without_core` of internals/: switched off, the stock `DbtCliResource` is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as package_version

from packaging import version

from internals import enabled
from internals.dagster_dbt_without_core import DbtCliResource


class LeanDbtCliResource(DbtCliResource):
    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(package_version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None


def dbt_cli_base() -> type[DbtCliResource]:
    """The class flightdeck's dbt resource builds on: lean while the part is on."""
    return LeanDbtCliResource if enabled("dbt_without_core") else DbtCliResource
