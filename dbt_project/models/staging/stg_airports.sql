{{ config(tags=['reference'], materialized='ephemeral') }}

select faa as airport_code, name as airport_name, lat, lon, alt, tz, dst, tzone
from {{ source('raw', 'airports') }}
