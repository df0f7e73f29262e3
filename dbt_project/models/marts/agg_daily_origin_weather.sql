with flights as (
    select
        flight_date,
        origin,
        count(*) as flights,
        count(*) filter (where is_cancelled) as cancellations,
        avg(dep_delay) as avg_dep_delay_min
    from {{ ref('fct_flights') }}
    where {{ in_partition_window('flight_date') }}
    group by flight_date, origin
),

weather as (
    select
        weather_date,
        origin,
        sum(precip_in) as total_precip_in,
        min(visibility_mi) as min_visibility_mi,
        max(wind_speed_mph) as max_wind_speed_mph
    from {{ ref('stg_weather') }}
    where {{ in_partition_window('weather_date') }}
    group by weather_date, origin
)

select
    f.flight_date,
    f.origin,
    f.flights,
    f.cancellations,
    f.avg_dep_delay_min,
    w.total_precip_in,
    w.min_visibility_mi,
    w.max_wind_speed_mph
from flights f
left join weather w on w.weather_date = f.flight_date and w.origin = f.origin
