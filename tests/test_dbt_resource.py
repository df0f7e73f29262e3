"""The dbt resource: the partition window reaches the models through dbt's process environment, and a
finished invocation's parse becomes the next one's starting point."""

import datetime as dt
import os
import shutil
import sys
from pathlib import Path

from assets.dbt_args import WINDOW_ENV_VARS, window_env, window_vars
from resources import settings
from resources.dbt import FlightdeckDbtCli


def copy_of_project(tmp_path: Path) -> tuple[Path, FlightdeckDbtCli]:
    """The dbt project copied (without invocation folders) and a resource pointed at the copy."""
    project = tmp_path / "dbt_project"
    shutil.copytree(
        settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("daily_dbt_models-*", "logs")
    )
    dbt = FlightdeckDbtCli(
        project_dir=str(project),
        profiles_dir=str(project),
        dbt_executable=str(Path(sys.executable).parent / "dbt"),
    )
    return project, dbt


def test_window_reaches_the_models_and_the_parse_state_is_kept(tmp_path, monkeypatch):
    project, dbt = copy_of_project(tmp_path)
    monkeypatch.setenv(settings.DUCKDB_PATH, str(tmp_path / "warehouse.duckdb"))  # not the install-time one
    kept = project / "target" / "partial_parse.msgpack"
    install_time_state = kept.read_bytes()

    invocation = dbt.cli_with_env(
        ["compile", "--select", "fct_flights"],
        window_env(window_vars(dt.date(2013, 1, 2), dt.date(2013, 1, 5))),
        manifest=project / "target" / "manifest.json",
        target_path=tmp_path / "invocation",
    )
    invocation.wait()

    assert invocation.is_successful()
    assert not set(WINDOW_ENV_VARS.values()) & set(os.environ)  # set for the dbt process only
    compiled = next((tmp_path / "invocation" / "compiled").rglob("fct_flights.sql")).read_text()
    assert "f.flight_date between date '2013-01-02' and date '2013-01-05'" in compiled

    dbt.keep_parse_state(invocation)
    assert kept.read_bytes() == (tmp_path / "invocation" / "partial_parse.msgpack").read_bytes()
    assert kept.read_bytes() != install_time_state  # parsed for this warehouse path
    assert not list(kept.parent.glob(".partial_parse.*"))  # no staged copy left behind


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
