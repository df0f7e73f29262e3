"""The baseline: the same loads and the three marts in plain DuckDB, no orchestration, no validation.

Usage: python benchmarks/plain_duckdb.py DATA_DIR  (prints rows loaded)
"""

import sqlite3
import sys
from pathlib import Path

import duckdb

data = Path(sys.argv[1])
con = duckdb.connect(str(data / "plain.duckdb"))
con.execute("SET TimeZone = 'UTC'")
files = sorted(str(p) for p in (data / "landing" / "flights").glob("*.csv"))
# Declared types and no sniffing (~27 ms a file): how a plain script that knows its files would read them.
# The columns in the files' order.
names = [
    "year",
    "month",
    "day",
    "dep_time",
    "sched_dep_time",
    "dep_delay",
    "arr_time",
    "sched_arr_time",
    "arr_delay",
    "carrier",
    "flight",
    "tailnum",
    "origin",
    "dest",
    "air_time",
    "distance",
    "hour",
    "minute",
    "time_hour",
]
text = {"carrier", "tailnum", "origin", "dest"}
columns = {n: "VARCHAR" if n in text else "TIMESTAMPTZ" if n == "time_hour" else "BIGINT" for n in names}
con.execute(
    f"""CREATE OR REPLACE TABLE flights AS
    SELECT *, make_date(year, month, day) AS flight_date
    FROM read_csv({files}, header=true, auto_detect=false, columns={columns})"""
)
with sqlite3.connect(data / "reference.sqlite") as ref:
    airlines = ref.execute("SELECT carrier, name FROM airlines").fetchall()
con.execute("CREATE OR REPLACE TABLE airlines (carrier VARCHAR, name VARCHAR)")
con.executemany("INSERT INTO airlines VALUES (?, ?)", airlines)
# Weather is pulled by its own schedule, not part of this backfill: its table is empty, as in flightdeck's.
con.execute(
    """CREATE OR REPLACE TABLE weather (origin VARCHAR, time_hour TIMESTAMPTZ, weather_date DATE,
    temp DOUBLE, wind_speed DOUBLE, precip DOUBLE, visib DOUBLE)"""
)
con.execute(
    """CREATE OR REPLACE TABLE fct_flights AS
    SELECT f.carrier || '-' || f.flight || '-' || f.origin || '-' || strftime(f.flight_date, '%Y%m%d') AS flight_id,
           f.flight_date, f.carrier, a.name AS carrier_name, f.flight, f.tailnum, f.origin, f.dest,
           f.flight_date::TIMESTAMP + to_minutes(f.hour * 60 + f.minute) AS scheduled_departure_local,
           f.dep_delay, f.arr_delay, f.distance, f.air_time, f.dep_time IS NULL AS is_cancelled,
           f.arr_delay IS NOT NULL AS is_completed, coalesce(f.arr_delay <= 15, false) AS is_on_time,
           w.temp AS origin_temp_f, w.wind_speed AS origin_wind_speed_mph, w.precip AS origin_precip_in,
           w.visib AS origin_visibility_mi
    FROM flights f LEFT JOIN airlines a USING (carrier)
    LEFT JOIN weather w ON w.origin = f.origin AND w.time_hour = f.time_hour"""
)
con.execute(
    """CREATE OR REPLACE TABLE agg_daily_carrier_performance AS
    SELECT flight_date, carrier, any_value(carrier_name) AS carrier_name, count(*) AS flights_scheduled,
           count(*) FILTER (WHERE is_cancelled) AS flights_cancelled,
           count(*) FILTER (WHERE is_completed) AS flights_completed,
           count(*) FILTER (WHERE is_on_time) AS on_time_arrivals,
           count(*) FILTER (WHERE is_on_time) / nullif(count(*) FILTER (WHERE is_completed), 0) AS on_time_rate,
           avg(dep_delay) AS avg_dep_delay_min, avg(arr_delay) AS avg_arr_delay_min
    FROM fct_flights GROUP BY flight_date, carrier"""
)
con.execute(
    """CREATE OR REPLACE TABLE agg_daily_origin_weather AS
    SELECT f.*, w.total_precip_in, w.min_visibility_mi, w.max_wind_speed_mph
    FROM (SELECT flight_date, origin, count(*) AS flights, count(*) FILTER (WHERE is_cancelled) AS cancellations,
                 avg(dep_delay) AS avg_dep_delay_min
          FROM fct_flights GROUP BY flight_date, origin) f
    LEFT JOIN (SELECT weather_date, origin, sum(precip) AS total_precip_in, min(visib) AS min_visibility_mi,
                      max(wind_speed) AS max_wind_speed_mph
               FROM weather GROUP BY weather_date, origin) w
    ON w.weather_date = f.flight_date AND w.origin = f.origin"""
)
print(con.execute("SELECT count(*) FROM fct_flights").fetchone()[0])
con.close()
