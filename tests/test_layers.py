"""The layers of the codebase: the engine (flightdeck/) knows nothing of Dagster, no module imports from a
layer above its own, and only internals/ imports Dagster's or dagster-dbt's private modules."""

import ast

import pytest

from tests.conftest import ROOT

LAYERS = ["flightdeck", "internals", "resources", "assets", "jobs", "sensors", "definitions"]
MODULES = [*sorted(p for layer in LAYERS[:-1] for p in (ROOT / layer).rglob("*.py")), ROOT / "definitions.py"]


def imported_packages(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_from_a_layer_above_its_own(path):
    layer = path.relative_to(ROOT).parts[0].removesuffix(".py")
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    assert not imported_packages(path) & above
    if layer == "flightdeck":
        assert not {"dagster", "dagster_dbt", "dagster_pandera"} & imported_packages(path)


def private_imports(path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} if node.module.startswith(("dagster._", "dagster_dbt.")) else set()
            names |= {f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith(("dagster._", "dagster_dbt."))}
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_private_apis_are_imported_only_in_internals(path):
    if path.relative_to(ROOT).parts[0] != "internals":
        assert not private_imports(path)
