"""docs/add_a_dataset.md cannot rot: its blocks are applied to a copy of the project, whose new test
then runs there (issue: UI / a newcomer's first hour)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "add_a_dataset.md"
BLOCK = re.compile(r"^```(\w+) file=(\S+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def guide_blocks() -> list[tuple[str, str, str]]:
    return BLOCK.findall(GUIDE.read_text())


def apply_diff(text: str, diff: str) -> str:
    """Context and '-' lines must appear exactly once; they become context and '+' lines."""
    old, new = [], []
    for line in diff.splitlines():
        marker, content = line[:1], line[1:]
        if marker in (" ", "-"):
            old.append(content)
        if marker in (" ", "+"):
            new.append(content)
    before, after = "\n".join(old) + "\n", "\n".join(new) + "\n"
    assert text.count(before) == 1, f"the guide's context does not match exactly once:\n{before}"
    return text.replace(before, after)


def test_the_guide_has_every_kind_of_step_and_no_dagster_code():
    """A new daily dataset is a pandera model, its declaration, dbt files and a test: no asset module,
    no change where the definitions are assembled."""
    paths = [path for _, path, _ in guide_blocks()]
    assert not [p for p in paths if p.startswith(("assets/", "definitions.py", "sensors/", "jobs/"))]
    for expected in (
        "flightdeck/schemas.py",
        "flightdeck/datasets.py",
        "dbt_project/models/staging/stg_fuel_prices.sql",
        "dbt_project/models/marts/agg_daily_fuel_prices.sql",
        "dbt_project/models/marts/_fuel_prices.yml",
        "tests/test_fuel_prices.py",
    ):
        assert expected in paths, expected


@pytest.mark.slow
def test_following_the_guide_gives_a_working_dataset(tmp_path):
    project = tmp_path / "project"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in tracked.stdout.splitlines():
        source = ROOT / name
        if source.is_file():
            target = project / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    for kind, path, body in guide_blocks():
        target = project / path
        if kind == "diff":
            target.write_text(apply_diff(target.read_text(), body))
        else:
            assert not target.exists(), f"the guide creates {path}, which already exists"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body)

    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [str(bin_dir / "dbt"), "parse", "--profiles-dir", ".", "--quiet"],
        cwd=project / "dbt_project",
        check=True,
        capture_output=True,
    )
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_fuel_prices.py",
            "tests/test_definitions.py::test_every_asset_is_described_and_owned",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "3 passed" in run.stdout
