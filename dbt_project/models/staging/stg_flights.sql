{{ config(tags=['daily']) }}

select
    flight_date,
    carrier,
    flight as flight_number,
    tailnum,
    origin,
    dest,
    -- hour/minute are the scheduled departure split into parts; local time at the origin.
    flight_date::timestamp + to_minutes(hour * 60 + minute) as scheduled_departure_local,
    time_hour as scheduled_departure_hour_utc,
    dep_time,
    dep_delay,
    arr_time,
    arr_delay,
    air_time,
    distance
from {{ source('raw', 'flights') }}
