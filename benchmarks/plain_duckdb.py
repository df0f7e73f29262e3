"""The baseline: the same loads and transformations in plain DuckDB, no orchestration, no validation.

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
con.execute(
    f"""CREATE OR REPLACE TABLE flights AS
    SELECT *, make_date(year, month, day) AS flight_date FROM read_csv({files}, header=true)"""
)
with sqlite3.connect(data / "reference.sqlite") as ref:
    airlines = ref.execute("SELECT carrier, name FROM airlines").fetchall()
con.execute("CREATE OR REPLACE TABLE airlines (carrier VARCHAR, name VARCHAR)")
con.executemany("INSERT INTO airlines VALUES (?, ?)", airlines)
con.execute(
    """CREATE OR REPLACE TABLE fct_flights AS
    SELECT f.carrier || '-' || f.flight || '-' || f.origin || '-' || strftime(f.flight_date, '%Y%m%d') AS flight_id,
           f.flight_date, f.carrier, a.name AS carrier_name, f.flight, f.tailnum, f.origin, f.dest,
           f.flight_date::TIMESTAMP + to_minutes(f.hour * 60 + f.minute) AS scheduled_departure_local,
           f.dep_delay, f.arr_delay, f.distance, f.air_time, f.dep_time IS NULL AS is_cancelled,
           f.arr_delay IS NOT NULL AS is_completed, coalesce(f.arr_delay <= 15, false) AS is_on_time
    FROM flights f LEFT JOIN airlines a USING (carrier)"""
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
print(con.execute("SELECT count(*) FROM fct_flights").fetchone()[0])
con.close()
