-- Every flight in fct_flights is counted once in agg_daily_carrier_performance, per day and carrier.
-- It reads two models, so Dagster is told which one it checks (dagster-dbt's meta.dagster.ref).
{{ config(meta={"dagster": {"ref": {"name": "agg_daily_carrier_performance"}}}) }}
with facts as (
    select flight_date, carrier, count(*) as flights, count(*) filter (where is_cancelled) as cancelled
    from {{ ref('fct_flights') }}
    where {{ in_partition_window('flight_date') }}
    group by all
)
select *
from facts f
full outer join {{ ref('agg_daily_carrier_performance') }} a using (flight_date, carrier)
where ({{ in_partition_window('coalesce(f.flight_date, a.flight_date)') }})
  and (f.flights is distinct from a.flights_scheduled or f.cancelled is distinct from a.flights_cancelled)
