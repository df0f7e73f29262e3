"""The Dagster UI as users use it, in a real browser (Playwright driving Debian's headless Chromium),
against a real `dagster dev` on 127.0.0.1 with a fresh data dir and DAGSTER_HOME (issues: UI, and the
event-driven runs: a dropped file reaching the marts, many runs at once never failing on the lock).

One `dagster dev` serves the whole module; the tests run in file order, as a user would: look at the
graph and the automations, drop a file, launch runs at once, materialize a partition, backfill a week,
then meet a failed check. Every
test saves a screenshot to tests/.artifacts/ui/; a failing one also saves the page's HTML.
`UPDATE_DOCS_SCREENSHOTS=1` copies the asset graph into docs/images/ for the README.
"""

import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import duckdb
import pytest
from dagster_graphql import DagsterGraphQLClient

from tests.conftest import DEMO_DIR, ROOT
from tests.dagster_dev import dagster_dev, wait_until
from tests.loading import set_field
from tests.runs import failed_partitions

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / ".artifacts" / "ui"
RAW_FLIGHTS = dg.AssetKey(["raw", "flights"])
MART = dg.AssetKey(["marts", "agg_daily_carrier_performance"])
DROPPED_DAY = "2013-01-14"
AUTOMATIONS = [
    "flights_landing_sensor",
    "flight_events_sensor",
    "live_flight_status_sensor",
    "health_alert_sensor",
    "reference_change_sensor",
    "run_failure_alert_sensor",
    "run_recovery_alert_sensor",
    "writer_pool_sensor",
    "ops_nightly",
    "reference_nightly",
    "weather_daily",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed: run `make browser`"),
]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("ui")
    data = root / "data"
    shutil.copytree(DEMO_DIR / "landing", data / "landing")
    (data / "landing" / "flights" / f"{DROPPED_DAY}.csv").unlink()  # dropped later, by a test
    shutil.copy(DEMO_DIR / "reference.sqlite", data / "reference.sqlite")
    with dagster_dev(data, root / "dagster_home") as (base_url, instance):
        # The landing sensor finds the 13 demo files: reference snapshots first, then one ranged run.
        def loaded():
            runs = instance.get_runs()
            done = len(instance.get_materialized_partitions(RAW_FLIGHTS)) == 13
            return done and runs and all(r.is_finished for r in runs)

        wait_until(loaded, timeout=420, interval=3, what="the sensor's first runs")
        yield base_url, instance, data


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        context = chromium.new_context(viewport={"width": 1920, "height": 1200})
        yield context
        context.close()
        chromium.close()


@pytest.fixture
def page(browser, ui, request):
    page = browser.new_page()
    page.set_default_timeout(30_000)
    # The community dialog a first visit to a local UI shows, once its query answers and a second later:
    # on a busy machine that can be on any page, so it is skipped whenever it stands in an action's way,
    # as a user would skip it.
    page.add_locator_handler(page.get_by_role("button", name="Skip"), lambda skip: skip.click())
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = request.node.name
    page.screenshot(path=ARTIFACTS / f"{name}.png")
    if getattr(request.node, "rep_call", None) is None or request.node.rep_call.failed:
        (ARTIFACTS / f"{name}.html").write_text(page.content())
    page.close()


def open_page(page, base_url: str, path: str) -> None:
    page.goto(base_url + path)
    page.wait_for_load_state("networkidle")


def launch_from_job_page(page, base_url: str, partitions: str, button: str) -> None:
    """Jobs → flights_pipeline → Materialize all… → partitions typed in the picker → launch."""
    open_page(page, base_url, "/locations/flightdeck/jobs/flights_pipeline")
    page.get_by_role("button", name="Materialize all…").click()
    confirm = page.get_by_role("button", name="Confirm")  # "upstream raw/weather not materialized"
    picker = page.locator("input[placeholder^='ex: 2013']")
    confirm.or_(picker).first.wait_for()
    if confirm.is_visible():
        confirm.click()
    picker.fill(partitions)
    picker.press("Tab")
    page.get_by_role("button", name=button).click()


def wait_for_run(instance, since: float, predicate, timeout: float = 420) -> dg.DagsterRun:
    def finished():
        runs = [r for r in instance.get_runs() if predicate(r)]
        runs = [
            r for r in runs if instance.get_run_record_by_id(r.run_id).create_timestamp.timestamp() > since
        ]
        return runs[0] if runs and runs[0].is_finished else None

    return wait_until(finished, timeout=timeout, interval=3, what="the run launched from the UI")


def test_the_asset_graph_shows_every_layer_with_its_checks(page, ui):
    base_url, _, _ = ui
    groups = ("raw", "staging", "marts", "ops", "stream")
    expanded = ",".join(f"global@global:{group}" for group in groups)  # what the UI puts in the URL
    open_page(page, base_url, f"/asset-groups/?expanded={quote(expanded)}")
    for group in groups:
        page.get_by_text(group, exact=True).first.wait_for()
    for asset in (
        "flights",
        "weather",
        "stg_flights",
        "fct_flights",
        "agg_daily_origin_weather",
        "live_flight_status",
    ):
        page.get_by_text(asset, exact=True).first.wait_for()
    # ops/pipeline_health and stream/flight_events lie below the graph's first screen, which renders only
    # what is in view; their groups are in the sidebar (above), the assets in tests/test_definitions.py.
    # Every asset node shows its checks; raw/flights' three gates and all_partitions_loaded passed.
    checks = page.get_by_text("Asset checks", exact=True)
    wait_until(lambda: checks.count() >= 10, 60, 0.5, what="the asset checks of every node")
    page.get_by_text("4 / 4 Passed").first.wait_for()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "asset_graph.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        shutil.copy(ARTIFACTS / "asset_graph.png", ROOT / "docs" / "images" / "asset_graph.png")


def test_sensors_and_schedules_are_listed_as_running(page, ui):
    base_url, _, _ = ui
    open_page(page, base_url, "/automation")
    for name in AUTOMATIONS:
        page.get_by_text(name, exact=True).wait_for()
    switches_on = page.locator("input[type=checkbox]:checked")  # each row's on/off switch
    wait_until(lambda: switches_on.count() == len(AUTOMATIONS), 60, 0.5, what="every automation running")


def test_a_dropped_file_reaches_the_marts_by_itself(page, ui):
    base_url, instance, data = ui
    landing = data / "landing" / "flights"
    part = landing / f"{DROPPED_DAY}.csv.part"
    shutil.copy(DEMO_DIR / "landing" / "flights" / f"{DROPPED_DAY}.csv", part)
    part.rename(landing / f"{DROPPED_DAY}.csv")  # the way writers publish a finished file
    wait_until(
        lambda: DROPPED_DAY in instance.get_materialized_partitions(MART),
        timeout=300,
        interval=1,
        what="the dropped file's day in the marts",
    )
    open_page(page, base_url, "/runs")
    page.get_by_text("flights_pipeline", exact=True).first.wait_for()


def test_many_runs_at_once_all_succeed_one_writer_at_a_time(page, ui):
    """The writer pool queues them; none fails on the DuckDB lock."""
    base_url, instance, _ = ui
    since = time.time()
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(base_url.rsplit(":", 1)[1]))
    days = ("2013-01-02", "2013-01-03", "2013-01-04")
    for day in days:
        client.submit_job_execution("flights_pipeline", tags={"dagster/partition": day})

    def all_finished():
        runs = [r for r in instance.get_runs() if r.tags.get("dagster/partition") in days]
        runs = [
            r for r in runs if instance.get_run_record_by_id(r.run_id).create_timestamp.timestamp() > since
        ]
        return len(runs) == len(days) and all(r.is_finished for r in runs) and runs

    runs = wait_until(all_finished, timeout=420, interval=2, what="the concurrent runs")
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(days)
    open_page(page, base_url, "/runs")
    page.get_by_text("Success").first.wait_for()


def test_materialize_one_partition_and_its_marts_from_the_ui(page, ui):
    base_url, instance, _ = ui
    since = time.time()
    launch_from_job_page(page, base_url, "2013-01-05", "Launch 1 run")
    run = wait_for_run(instance, since, lambda r: r.tags.get("dagster/partition") == "2013-01-05")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    open_page(page, base_url, f"/runs/{run.run_id}")
    page.get_by_text("Success", exact=True).first.wait_for()
    fct = instance.get_latest_materialization_event(dg.AssetKey(["marts", "fct_flights"]))
    assert fct.run_id == run.run_id and fct.dagster_event.partition == "2013-01-05"


def test_backfill_a_week_from_the_ui(page, ui):
    base_url, instance, _ = ui
    since = time.time()
    launch_from_job_page(page, base_url, "[2013-01-01...2013-01-07]", "Launch backfill")

    def completed():
        backfills = [b for b in instance.get_backfills() if b.backfill_timestamp > since]
        return backfills[0] if backfills and backfills[0].status.value.startswith("COMPLETED") else None

    backfill = wait_until(completed, timeout=420, interval=3, what="the backfill launched from the UI")
    assert backfill.status.value == "COMPLETED_SUCCESS"
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS  # one ranged run
    open_page(page, base_url, f"/runs/b/{backfill.backfill_id}")
    page.get_by_text("Completed", exact=False).first.wait_for()


BAD_DAY = "2013-01-10"


def test_a_backfill_with_a_bad_day_loads_the_others_and_the_corrected_file_loads_by_itself(page, ui):
    """Partial failures stay partial, from the UI's backfill dialog: one unreadable day in the range is
    held back and shown failed with one alert for the backfill; the other days reach the marts in the
    same run; the corrected file then loads by itself through the sensor."""
    base_url, instance, data = ui
    path = data / "landing" / "flights" / f"{BAD_DAY}.csv"
    good = path.read_bytes()
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(good.replace(b",", b";"))  # a wrong delimiter: the file breaks the contract
    tmp.rename(path)
    since = time.time()
    launch_from_job_page(page, base_url, "[2013-01-08...2013-01-12]", "Launch backfill")

    def completed():
        backfills = [b for b in instance.get_backfills() if b.backfill_timestamp > since]
        return (
            backfills[0]
            if backfills and backfills[0].status.value.startswith(("COMPLETED", "FAILED"))
            else None
        )

    backfill = wait_until(completed, timeout=420, interval=3, what="the backfill with a bad day")
    [run] = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert run.status == dg.DagsterRunStatus.FAILURE  # one ranged run, failed for the one bad day
    for day in ("2013-01-08", "2013-01-09", "2013-01-11", "2013-01-12"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(["marts", "fct_flights"]), asset_partitions=[day]),
            limit=1,
        ).records
        assert records and records[0].run_id == run.run_id, day
    assert failed_partitions(instance, RAW_FLIGHTS) == [BAD_DAY]
    assert BAD_DAY in failed_partitions(instance, MART)

    def alerts():
        try:
            con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
        except duckdb.Error:  # a run or sensor is writing; look again
            return None
        try:
            return con.execute(
                "SELECT summary, details FROM ops.alerts WHERE kind = 'run_failure' AND details LIKE ?",
                [f"%{backfill.backfill_id}%"],
            ).fetchall()
        finally:
            con.close()

    [(_, details)] = wait_until(alerts, timeout=120, interval=2, what="the backfill's one alert")
    assert f"{BAD_DAY}: landing_file: bad_delimiter" in details
    open_page(page, base_url, "/assets/raw/flights?view=partitions")
    page.get_by_text("Failed (1)").first.wait_for()  # the partition bar's legend: the bad day alone
    page.locator("input[placeholder^='Filter by name']").fill(BAD_DAY)  # the list is long: find the day
    page.get_by_text(BAD_DAY, exact=True).first.click()
    page.get_by_text("bad_delimiter", exact=False).first.wait_for()  # its reason, one click away
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / "failed_partition.png")
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        shutil.copy(ARTIFACTS / "failed_partition.png", ROOT / "docs" / "images" / "failed_partition.png")

    tmp.write_bytes(good)  # the corrected file, published atomically: the sensor loads it by itself
    tmp.rename(path)
    wait_until(
        lambda: (
            failed_partitions(instance, RAW_FLIGHTS) == []
            and BAD_DAY not in failed_partitions(instance, MART)
        ),
        timeout=300,
        interval=2,
        what="the corrected day loaded by the sensor",
    )


def test_a_failed_check_is_visible_on_the_asset_page(page, ui):
    base_url, instance, data = ui
    since = time.time()
    path = data / "landing" / "flights" / f"{DROPPED_DAY}.csv"
    lines = path.read_text().splitlines()
    for i in range(1, 1 + len(lines) // 50):  # ~2% bad origins: above the 1% quarantine gate
        lines[i] = set_field(lines[i], "origin", "XXX")
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.rename(path)  # published atomically, as the landing contract asks
    run = wait_for_run(instance, since, lambda r: r.job_name == "flights_pipeline")
    assert run.status == dg.DagsterRunStatus.FAILURE
    open_page(page, base_url, "/assets/raw/flights?view=checks")
    page.get_by_text("quarantine_rate_below_threshold", exact=True).first.wait_for()
    page.get_by_text("Failed", exact=True).first.wait_for()
