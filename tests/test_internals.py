"""internals/: each part has one switch and the versions it was verified with; off, or on another
version, the stock Dagster / dagster-dbt path runs, saying so once. (`make test` also runs the core
pipeline tests with every part off: the Makefile's test-stock.)"""

import json
import logging
import os

import pytest

import internals
from tests.conftest import printed_by_fresh_python

ALL_OFF = {internals.PARTS[name].switch: "false" for name in internals.PARTS}
PROBE = (
    "import gc, json, sys; import definitions; from definitions import defs; dbt = defs.resources['dbt']; "
    "print(json.dumps({'gc_frozen': gc.get_freeze_count() > 0, 'dbt_core_imported': 'dbt.version' in sys.modules, "
    "'resource_bases': [c.__name__ for c in type(dbt).__mro__], 'dbt_executable': dbt.dbt_executable}))"
)


def probe(env: dict[str, str]) -> dict:
    return json.loads(printed_by_fresh_python(PROBE, env={**os.environ, **env}).splitlines()[-1])


def test_every_part_on_by_default_and_each_off_with_its_switch():
    on = probe({})
    assert on["gc_frozen"] and not on["dbt_core_imported"]
    assert "LeanDbtCliResource" in on["resource_bases"] and on["dbt_executable"].endswith("python")
    off = probe(ALL_OFF)
    assert not off["gc_frozen"] and off["dbt_core_imported"]
    assert "LeanDbtCliResource" not in off["resource_bases"] and off["dbt_executable"].endswith("/dbt")


def test_a_part_on_an_unverified_version_turns_itself_off_saying_so_once(monkeypatch, caplog):
    part = internals.PARTS["mark_failed_partitions"]
    monkeypatch.setitem(
        internals.PARTS, part.name, internals.Part(part.name, part.switch, {"dagster": "0.1."}, part.what)
    )
    internals._unverified.cache_clear()
    internals._announce.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="flightdeck.internals"):
            assert not internals.enabled(part.name)
            assert not internals.enabled(part.name)
    finally:
        internals._unverified.cache_clear()
        internals._announce.cache_clear()
    [line] = [r.getMessage() for r in caplog.records]
    assert "mark_failed_partitions is off (dagster " in line and "the stock path runs" in line


@pytest.mark.parametrize("name", sorted(internals.PARTS))
def test_each_switch_is_a_validated_setting(name):
    from flightdeck import settings

    switch = internals.PARTS[name].switch
    assert switch in settings.CHECKS and settings.defaults()[switch] == "true"
    with pytest.raises(settings.SettingsError, match=switch):
        settings.validate({**os.environ, switch: "perhaps"})
