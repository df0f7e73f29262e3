{{ config(tags=['weather'], materialized='ephemeral') }}

select
    origin,
    time_hour as observed_hour_utc,
    weather_date,
    temp as temp_f,
    dewp as dewpoint_f,
    humid as humidity_pct,
    wind_dir as wind_direction_deg,
    wind_speed as wind_speed_mph,
    wind_gust as wind_gust_mph,
    precip as precip_in,
    pressure as pressure_mbar,
    visib as visibility_mi
from {{ source('raw', 'weather') }}
