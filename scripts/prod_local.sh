#!/usr/bin/env bash
# `make prod-local`: code server + webserver + daemon, as in production, against the local PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export DAGSTER_PG_HOST=${DAGSTER_PG_HOST:-127.0.0.1} DAGSTER_PG_PORT=${DAGSTER_PG_PORT:-5432}
export DAGSTER_PG_DB=${DAGSTER_PG_DB:-flightdeck_dagster} DAGSTER_PG_USER=${DAGSTER_PG_USER:-postgres}
export DAGSTER_PG_PASSWORD=${DAGSTER_PG_PASSWORD:-}
export DAGSTER_HOME=${DAGSTER_HOME:-$PWD/.dagster_home_prod}
# PostgreSQL storage writes a ranged run's per-partition asset events in batches when this is set.
export DAGSTER_EVENT_BATCH_SIZE=${DAGSTER_EVENT_BATCH_SIZE:-500}
mkdir -p "$DAGSTER_HOME" && cp deploy/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
psql -h "$DAGSTER_PG_HOST" -p "$DAGSTER_PG_PORT" -U "$DAGSTER_PG_USER" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$DAGSTER_PG_DB'" | grep -q 1 \
  || psql -h "$DAGSTER_PG_HOST" -p "$DAGSTER_PG_PORT" -U "$DAGSTER_PG_USER" -d postgres -c "CREATE DATABASE $DAGSTER_PG_DB"

pids=()
# On exit, stop the whole process group (the code server's gRPC child and run workers included): TERM,
# then KILL after a grace period, since the background code server does not always act on TERM.
stop_all() { trap '' EXIT INT TERM; kill -TERM 0 2>/dev/null; sleep 5; kill -KILL 0 2>/dev/null; }
trap stop_all EXIT INT TERM
# The weather API stands in for the pulled source (in production, point the URL at the real one).
if [ -z "${FLIGHTDECK_WEATHER_API_URL:-}" ]; then
  $BIN/python -m services.demo_weather_api --port 8765 & pids+=($!)
  export FLIGHTDECK_WEATHER_API_URL=http://127.0.0.1:8765
fi
$BIN/dagster code-server start -h 127.0.0.1 -p 4266 -f definitions.py --location-name flightdeck & pids+=($!)
for _ in $(seq 1 120); do (echo > /dev/tcp/127.0.0.1/4266) 2>/dev/null && break; sleep 1; done
$BIN/dagster-webserver -h 127.0.0.1 -p "${PORT:-3000}" -w deploy/workspace.yaml & pids+=($!)
$BIN/dagster-daemon run -w deploy/workspace.yaml & pids+=($!)
wait -n
