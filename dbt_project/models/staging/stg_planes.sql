{{ config(tags=['reference'], materialized='ephemeral') }}

select tailnum, year as year_built, type as aircraft_type, manufacturer, model, engines, seats, speed, engine
from {{ source('raw', 'planes') }}
