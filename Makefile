# flightdeck — set-up and everyday commands. `make dev` and `make test` are all a newcomer needs.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON_VERSION := 3.11
UV_VERSION := 0.13.8
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Installed packages are compiled to bytecode once, here: where PYTHONDONTWRITEBYTECODE is set (as on CI
# machines) every process would otherwise recompile dagster, dbt and pandas from source (~10 s a process).
export UV_COMPILE_BYTECODE := 1
DAGSTER_HOME_DIR := $(CURDIR)/.dagster_home
WEATHER_API_PORT ?= 8765
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o \( -name '*.sql' -o -name '*.yml' \) -print)
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: install browser dev demo-data test test-stock test-fast test-e2e lint format bench bench-100 prod-local clean

install: $(VENV)/.installed $(MANIFEST)  ## Reproducible .venv from uv.lock + the dbt manifest; no-op when up to date

$(UV):
	python3 -m pip install --user --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON_VERSION)
	@touch $@

# The dbt manifest is built once here, never when definitions load. It is parsed with the warehouse runs
# will use (flightdeck/settings.py resolves it; its file name is dbt's database name) and the way runs
# start dbt (internals/dbt_launcher.py while its part is on), so even the first run keeps dbt's parse.
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	warehouse="$$($(BIN)/python -c 'from flightdeck import settings; print(settings.get(settings.DUCKDB_PATH))')" && \
	  dbt="$$($(BIN)/python -c 'from internals import enabled; \
	    print("python ../internals/dbt_launcher.py --cold" if enabled("warm_dbt") else "dbt")')" && \
	  cd dbt_project && FLIGHTDECK_DUCKDB_PATH="$$warehouse" ../$(BIN)/$$dbt parse --profiles-dir . --quiet
	@touch $@

# The UI tests drive Debian's Chromium through Playwright; no browser is downloaded by pip or playwright.
browser:  ## Debian's chromium at /usr/bin/chromium (apt, as root or with sudo); no-op when present
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q chromium \
	  || echo "WARNING: chromium could not be installed; the browser tests will be skipped"; }

demo-data: install  ## Landing files for all of 2013 + the reference database (kept if present)
	$(BIN)/python scripts/prepare_demo_data.py

dev: install demo-data  ## Dagster UI on http://127.0.0.1:3000 with sensors and schedules running
	mkdir -p $(DAGSTER_HOME_DIR) && cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	@# The weather API runs beside dagster dev and stops with it (Ctrl-C or any exit); so does the replay of
	@# live flight events, when Redis answers (an hour of 2013 a minute; nothing happens without Redis).
	$(BIN)/python -m services.demo_weather_api --port $(WEATHER_API_PORT) & weather=$$!; \
	events=; if $(BIN)/python -c 'import redis, sys; from flightdeck import settings; redis.Redis.from_url(settings.get(settings.STREAM_URL), socket_connect_timeout=1).ping()' 2>/dev/null; then \
	  $(BIN)/python -m services.flight_events --from 2013-01-01 --to 2013-01-07 --speed 60 & events=$$!; fi; \
	trap 'kill $$weather $$events 2>/dev/null' EXIT INT TERM; \
	FLIGHTDECK_WEATHER_API_URL=http://127.0.0.1:$(WEATHER_API_PORT) DAGSTER_HOME=$(DAGSTER_HOME_DIR) \
	  $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

# Four workers on two cores, one test file each at a time: most end-to-end time is waiting on sensors,
# daemons and a schedule's minute, so the extra workers fill the idle cores. The end-to-end tests wait for
# what they need (a lock met, a run finished) rather than a fixed time, so a busy machine slows them only.
test: install browser  ## Every test, the browser tests included, then the core ones on the stock path
	$(BIN)/pytest -n 4 --dist loadfile
	$(MAKE) --no-print-directory test-stock

# The core pipeline tests (end to end through the marts, idempotency, quarantine, ranged windows) once more with
# every part of internals/ switched off: the stock Dagster / dagster-dbt path keeps working.
STOCK_PATH := FLIGHTDECK_MARK_FAILED_PARTITIONS=false FLIGHTDECK_DBT_WITHOUT_CORE=false \
  FLIGHTDECK_WARM_DBT=false FLIGHTDECK_GC_PAUSE=false FLIGHTDECK_BATCHED_EVENT_LOG=false
STOCK_TESTS := tests/test_pipeline.py tests/test_quarantine.py
# Spread test by test over three workers (two files would keep a third idle; they share no module fixture).
test-stock: install  ## The core pipeline tests with every part of internals/ off
	env $(STOCK_PATH) $(BIN)/pytest -n 3 --dist load $(STOCK_TESTS)

test-e2e: install browser  ## Only the tests that start dagster dev and a browser
	$(BIN)/pytest -n 2 --dist loadfile -m slow

test-fast: install  ## Tests that start no dagster dev and no browser
	$(BIN)/pytest -m "not slow"

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

bench: install  ## Speed figures; writes benchmarks/results/latest.md
	$(BIN)/python benchmarks/run.py

bench-100: install  ## The 100x year (~15 min; its data ~5 min the first time), added to latest.md
	$(BIN)/python benchmarks/run.py --scales 100 --keep-others

prod-local: install demo-data  ## Code server + webserver + daemon against the local PostgreSQL (deploy/)
	scripts/prod_local.sh

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs .pytest_cache
