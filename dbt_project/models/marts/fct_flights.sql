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
    coalesce(f.arr_delay <= 15, false) as is_on_time
from {{ ref('stg_flights') }} f
left join {{ ref('stg_airlines') }} a using (carrier)
where {{ in_partition_window('f.flight_date') }}
