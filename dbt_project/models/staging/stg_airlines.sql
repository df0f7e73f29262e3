{{ config(tags=['reference'], materialized='ephemeral') }}

select carrier, name as carrier_name
from {{ source('raw', 'airlines') }}
