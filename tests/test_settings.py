"""Every FLIGHTDECK_* setting is validated once, when definitions load: a bad value fails naming the
variable, its value (secrets redacted) and what is allowed, before anything is written."""

import json
import os
import subprocess

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from flightdeck import settings
from tests.conftest import ROOT, printed_by_fresh_python

BAD = [
    ("FLIGHTDECK_MIN_VOLUME_FRACTION", "1.5", "a number >= 0 and <= 1"),
    ("FLIGHTDECK_MAX_QUARANTINE_RATE", "five percent", "a number >= 0 and <= 1"),
    ("FLIGHTDECK_MAX_QUARANTINE_RATE", "nan", "a number >= 0 and <= 1"),
    ("FLIGHTDECK_DUCKDB_MEMORY_LIMIT", "1 gigabit", "a DuckDB memory limit such as 1GB"),
    ("FLIGHTDECK_PARTITION_START", "2013-02-30", "a date YYYY-MM-DD"),
    ("FLIGHTDECK_PARTITION_START", "2013-W01-1", "a date YYYY-MM-DD"),
    ("FLIGHTDECK_WEATHER_MAX_ATTEMPTS", "0", "an integer >= 1"),
    ("FLIGHTDECK_WEATHER_MAX_ATTEMPTS", "2.5", "an integer >= 1"),
    ("FLIGHTDECK_WEATHER_PULL_TIME", "6:00pm", "a time of day HH:MM (24-hour)"),
    ("FLIGHTDECK_WEATHER_PULL_TIME", "24:00", "a time of day HH:MM (24-hour)"),
    ("FLIGHTDECK_WEATHER_READ_TIMEOUT_SECONDS", "-1", "a number > 0"),
    ("FLIGHTDECK_WEATHER_API_URL", "ftp://127.0.0.1", "a URL (http, https"),
    ("FLIGHTDECK_ALERT_WEBHOOK_URL", "hooks.example.com/x", "a URL (http, https"),
    ("FLIGHTDECK_SMTP_PORT", "70000", "an integer >= 1 and <= 65535"),
    ("FLIGHTDECK_SMTP_STARTTLS", "maybe", "one of true, false"),
    ("FLIGHTDECK_EXECUTOR", "multiprocess", "one of in_process, celery"),
    ("FLIGHTDECK_REFERENCE_DB_URL", "not a url", "an SQLAlchemy database URL"),
    ("FLIGHTDECK_ALERT_EMAIL_TO", "oncall, data@example.com", "comma-separated e-mail addresses"),
    ("FLIGHTDECK_LANDING_SETTLE_SECONDS", "soon", "a number >= 0"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_value_names_the_variable_its_value_and_what_is_allowed(name, value, allowed):
    with pytest.raises(settings.SettingsError) as caught:
        settings.validate({name: value})
    assert f"{name}={value!r}: expected {allowed}" in str(caught.value)


def test_a_partition_end_before_its_start_and_a_misspelt_name_are_errors():
    with pytest.raises(settings.SettingsError) as caught:
        settings.validate({"FLIGHTDECK_PARTITION_END": "2012-12-31", "FLIGHTDECK_MAX_QUARANTINE_RAT": "0.1"})
    message = str(caught.value)
    assert (
        "FLIGHTDECK_PARTITION_END='2012-12-31' must be after FLIGHTDECK_PARTITION_START='2013-01-01'"
        in message
    )
    assert (
        "FLIGHTDECK_MAX_QUARANTINE_RAT is not a flightdeck setting (did you mean FLIGHTDECK_MAX_QUARANTINE_RATE?)"
        in message
    )


def test_the_defaults_and_every_documented_example_are_valid():
    settings.validate({name: value for name, value in settings.defaults().items()})
    settings.validate({"FLIGHTDECK_DUCKDB_MEMORY_LIMIT": "512MB", "FLIGHTDECK_EXECUTOR": "celery",
                       "FLIGHTDECK_REFERENCE_DB_URL": "postgresql://flightdeck:pw@127.0.0.1:5432/reference",
                       "FLIGHTDECK_CELERY_BROKER_URL": "redis://127.0.0.1:6379/0"})  # fmt: skip


def test_a_bad_url_is_rejected_without_echoing_its_secret():
    for value in ("postgresql://user:S3CRET-MARKER@db:notaport/x", "https://u:S3CRET-MARKER@api:99999/x?token=S3CRET-MARKER",
                  "ftp://u:S3CRET-MARKER@host/"):  # fmt: skip
        name = "FLIGHTDECK_WEATHER_API_URL"
        with pytest.raises(settings.SettingsError) as caught:
            settings.validate({name: value})
        assert name in str(caught.value) and "S3CRET-MARKER" not in str(caught.value)
    redacted = settings.redact_url(
        "https://alerts:S3CRET-MARKER@hooks.example.com/x?api_key=S3CRET-MARKER&room=ops"
    )
    assert redacted == "https://alerts:***@hooks.example.com/x?api_key=***&room=ops"


# Any text at all, for every setting: validation either accepts it, and then its consumer can read it,
# or raises SettingsError; never another exception.
@hypothesis_settings(max_examples=300, deadline=None, derandomize=True)
@given(name=st.sampled_from(sorted(settings.CHECKS)), value=st.text(max_size=30))
def test_any_value_of_any_setting_is_accepted_or_rejected_clearly(name, value):
    try:
        settings.validate({name: value})
    except settings.SettingsError as exc:
        assert name in str(exc)
        return
    check = settings.CHECKS[name]
    if value.strip() and check in (settings._RATE, settings._SECONDS, settings._POSITIVE_SECONDS):
        float(value)


def test_definitions_fail_to_load_on_a_bad_setting_and_nothing_is_written(tmp_path):
    """The README's CLI backfill with a bad threshold: it fails at once, naming it; no warehouse exists."""
    env = {**os.environ, "FLIGHTDECK_DATA_DIR": str(tmp_path), "FLIGHTDECK_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
           "FLIGHTDECK_MIN_VOLUME_FRACTION": "50%", "DAGSTER_HOME": str(tmp_path)}  # fmt: skip
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "dagster"), "asset", "materialize", "-f", "definitions.py",
         "--select", "raw/flights", "--partition", "2013-01-02"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0
    assert "FLIGHTDECK_MIN_VOLUME_FRACTION='50%': expected a number >= 0 and <= 1" in done.stderr
    assert not (tmp_path / "w.duckdb").exists()


def test_loading_the_definitions_reads_the_environment_and_never_writes_it(tmp_path):
    """With no FLIGHTDECK_* variable set, the definitions load with the defaults and the process's
    environment is left as it was; a set variable stays an EnvVar, so the UI never shows its value."""
    # pandera sets these two for pyspark when imported (pandera/external_config.py), flightdeck none.
    bare = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FLIGHTDECK_") and k not in ("SPARK_LOCAL_IP", "PYARROW_IGNORE_TIMEZONE")
    }
    code = (
        "import os, json; before = dict(os.environ); import definitions; "
        "from definitions import defs; r = defs.resources; "
        "pandera = {'SPARK_LOCAL_IP', 'PYARROW_IGNORE_TIMEZONE'}; "
        "mine = lambda env: {k: v for k, v in env.items() if k not in pandera}; "
        "print(json.dumps([mine(dict(os.environ)) == mine(before), r['warehouse'].path, "
        "type(r['reference_db'].url).__name__]))"
    )
    unchanged, path, url_kind = json.loads(printed_by_fresh_python(code, env=bare))
    assert unchanged and path == str(ROOT / "data" / "warehouse.duckdb") and url_kind == "str"
    set_url = bare | {"FLIGHTDECK_REFERENCE_DB_URL": f"sqlite:///{tmp_path / 'r.sqlite'}"}
    unchanged, _, url_kind = json.loads(printed_by_fresh_python(code, env=set_url))
    assert unchanged and url_kind == "EnvVar"
