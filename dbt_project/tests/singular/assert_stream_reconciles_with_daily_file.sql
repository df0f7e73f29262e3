-- The reconciliation of the two layers: for each day whose batch file has landed, the stream's departed,
-- arrived and cancelled counts against the file's (a flight departed when it has a departure time,
-- arrived when it has an arrival delay, cancelled when it has no departure time). Every difference is a
-- row; a warning, because the batch layer is already the truth for the day.
{{ config(severity='warn', meta={"dagster": {"ref": {"name": "live_flight_status"}}}) }}
with file_counts as (
    select flight_date, event_type, count(*) as in_file
    from (
        select flight_date, 'departed' as event_type from {{ source('raw', 'flights') }} where dep_time is not null
        union all
        select flight_date, 'arrived' from {{ source('raw', 'flights') }}
        where arr_time is not null and arr_delay is not null and dep_time is not null and dep_delay is not null
        union all
        select flight_date, 'cancelled' from {{ source('raw', 'flights') }} where dep_time is null
    )
    where {{ in_partition_window('flight_date') }}
    group by all
),

stream_counts as (
    select flight_date, event_type, count(*) as in_stream
    from {{ ref('stg_flight_events') }}
    where {{ in_partition_window('flight_date') }}
    group by all
)

select flight_date, event_type, coalesce(in_stream, 0) as in_stream, in_file
from file_counts
left join stream_counts using (flight_date, event_type)
-- only days the stream has spoken about: a day without live events is not a difference
where flight_date in (select flight_date from stream_counts)
  and coalesce(in_stream, 0) <> in_file
union all
select flight_date, event_type, in_stream, 0
from stream_counts
where flight_date in (select flight_date from file_counts)
  and (flight_date, event_type) not in (select flight_date, event_type from file_counts)
