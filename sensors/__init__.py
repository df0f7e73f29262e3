"""Sensors: what starts runs without a person, and the alerts."""

# The sensor daemon runs its loop at most every 5 s. A sensor whose minimum interval is 5 s itself skips
# every other loop whenever its last tick started a moment late (ticks were 10 s apart about half the
# time, measured under dagster dev); below the loop's period it is evaluated on every loop.
EVERY_DAEMON_LOOP_SECONDS = 1
