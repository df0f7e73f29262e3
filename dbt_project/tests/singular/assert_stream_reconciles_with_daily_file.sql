-- The reconciliation of the two layers: for each day whose batch file has landed and that the stream
-- spoke about, the live status counts (departed, arrived, cancelled) against the file's (cancelled: no
-- departure time; arrived: an arrival delay; departed: the others). Every difference is a row; a
-- warning, because the batch layer is already the truth for the day.
{{ config(severity='warn', meta={"dagster": {"ref": {"name": "live_flight_status"}}}) }}
with in_file as (
    select
        flight_date,
        case when dep_time is null then 'cancelled' when arr_delay is not null then 'arrived' else 'departed' end
            as status,
        count(*) as flights
    from {{ source('raw', 'flights') }}
    where {{ in_partition_window('flight_date') }}
    group by all
),

in_stream as (
    select flight_date, status, count(*) as flights
    from {{ ref('live_flight_status') }}
    where {{ in_partition_window('flight_date') }}
    group by all
)

select flight_date, status, coalesce(s.flights, 0) as in_stream, coalesce(f.flights, 0) as in_file
from in_file f
full outer join in_stream s using (flight_date, status)
where flight_date in (select flight_date from in_stream)
  and flight_date in (select flight_date from in_file)
  and coalesce(s.flights, 0) <> coalesce(f.flights, 0)
