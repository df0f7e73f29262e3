-- The speed layer's view of each flight: its latest event. A day whose batch file has landed (raw.flights
-- holds it) is marked reconciled: from then on the batch layer (fct_flights) is the truth for that day.
with events as (
    select *
    from {{ ref('stg_flight_events') }}
    where {{ in_partition_window('flight_date') }}
),

latest as (
    select
        *,
        row_number() over (
            partition by flight_date, carrier, flight_number, origin
            -- the same instant: arrived after departed
            order by event_time desc, event_type = 'arrived' desc, event_id desc
        ) as nth
    from events
),

batch_days as (
    select distinct flight_date
    from {{ source('raw', 'flights') }}
    where {{ in_partition_window('flight_date') }}
)

select
    l.flight_date,
    l.carrier,
    l.flight_number as flight,
    l.origin,
    l.event_type as status,
    l.dest,
    l.event_time as last_event_time,
    l.delay_min,
    b.flight_date is not null as reconciled
from latest l
left join batch_days b using (flight_date)
where l.nth = 1
