{{ config(materialized='ephemeral', tags=['daily']) }}

select
    event_id,
    type as event_type,
    flight_date,
    carrier,
    flight as flight_number,
    origin,
    dest,
    event_time,
    delay_min
from {{ source('raw', 'flight_events') }}
