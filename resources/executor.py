"""Which executor runs a run's steps, chosen by the environment (FLIGHTDECK_EXECUTOR).

- `in_process` (the default): every step of a run in the run's own process. DuckDB has one writer per
  file anyway, and each extra step process costs ~3.7 s.
- `celery`: steps are sent over a broker (RabbitMQ or Redis, FLIGHTDECK_CELERY_BROKER_URL) to
  `dagster-celery` workers on other machines: the compute scale-out path of docs/scaling.md, for
  when the warehouse is no longer one local DuckDB file.
"""

import dagster as dg

from flightdeck import settings


def build_executor() -> dg.ExecutorDefinition:
    kind = settings.get(settings.EXECUTOR)
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(
            {
                "broker": {"env": settings.CELERY_BROKER_URL},
                "backend": {"env": settings.CELERY_BACKEND_URL},
            }
        )
    raise ValueError(f"{settings.EXECUTOR}={kind!r}: expected 'in_process' or 'celery'")
