select
    flight_date,
    carrier,
    any_value(carrier_name) as carrier_name,
    count(*) as flights_scheduled,
    count(*) filter (where is_cancelled) as flights_cancelled,
    count(*) filter (where is_completed) as flights_completed,
    count(*) filter (where is_on_time) as on_time_arrivals,
    count(*) filter (where is_on_time) / nullif(count(*) filter (where is_completed), 0) as on_time_rate,
    avg(dep_delay) as avg_dep_delay_min,
    avg(arr_delay) as avg_arr_delay_min
from {{ ref('fct_flights') }}
where {{ in_partition_window('flight_date') }}
group by flight_date, carrier
