select
    f.carrier || '-' || f.flight_number || '-' || f.origin || '-' || strftime(f.flight_date, '%Y%m%d') as flight_id,
    f.flight_date,
    f.carrier,
    a.carrier_name,
    f.flight_number as flight,
    f.tailnum,
    f.origin,
    f.dest,
    f.scheduled_departure_local,
    f.dep_delay,
    f.arr_delay,
    f.distance,
    f.air_time,
    f.dep_time is null as is_cancelled,
    f.arr_delay is not null as is_completed,
    coalesce(f.arr_delay <= 15, false) as is_on_time,
    -- Weather at the origin in the scheduled departure hour; null when there was no observation.
    w.temp_f as origin_temp_f,
    w.wind_speed_mph as origin_wind_speed_mph,
    w.precip_in as origin_precip_in,
    w.visibility_mi as origin_visibility_mi
from {{ ref('stg_flights') }} f
left join {{ ref('stg_airlines') }} a using (carrier)
left join {{ ref('stg_weather') }} w
    on w.origin = f.origin
    and w.observed_hour_utc = f.scheduled_departure_hour_utc
    and {{ in_partition_window('w.weather_date') }}
where {{ in_partition_window('f.flight_date') }}
