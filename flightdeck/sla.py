"""Service levels: how long a run of each job may take before it counts as an SLA breach."""

JOB_SLA_SECONDS: dict[str, float] = {
    "flights_pipeline": 900.0,
    "reference_refresh": 300.0,
    "weather_pipeline": 600.0,
    "marts_rebuild": 900.0,
    "ops_nightly": 300.0,
}
