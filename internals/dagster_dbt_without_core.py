"""dagster-dbt, imported without importing dbt-core into this process.

Why: when dbt-core is importable, dagster-dbt imports it (~0.9 s in every process that loads the
definitions: the CLI, each run, the daemon's and the webserver's code servers) only to evaluate dbt
selection strings and build dbt adapters in-process. Without it, as with dbt Fusion (which has no Python
package), dagster-dbt works the same, and takes every node of the manifest when the selection is
everything. flightdeck runs dbt only in dbt's own process, builds no in-process adapter
(internals/lean_dbt_cli.py), and its dbt assets select the whole project (assets/dbt_models.py), so
nothing needs dbt-core here. Where dagster-dbt was imported before this module, with dbt-core, or with
this part switched off (internals/), everything works the same, only the import costs more.

dbt-core is hidden only while dagster-dbt is first imported: a `None` in `sys.modules` makes that import
raise ImportError (as Python's import system documents), which dagster-dbt takes for "no dbt-core".
Anything imported later, dbt itself included, is untouched.
"""

import sys

from internals import enabled

_VERSION_MODULE = "dbt.version"  # what dagster_dbt.compat imports to find dbt-core

if "dagster_dbt" not in sys.modules and enabled("dbt_without_core"):
    _imported = sys.modules.get(_VERSION_MODULE)
    sys.modules[_VERSION_MODULE] = None
    try:
        import dagster_dbt  # noqa: F401
    finally:
        if _imported is None:
            del sys.modules[_VERSION_MODULE]
        else:
            sys.modules[_VERSION_MODULE] = _imported

from dagster_dbt import (  # noqa: E402
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliInvocation,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

__all__ = [
    "DagsterDbtTranslator",
    "DagsterDbtTranslatorSettings",
    "DbtCliInvocation",
    "DbtCliResource",
    "DbtProject",
    "dbt_assets",
]
