"""Dagster-side code the asset modules share: partitions, policies, the raw-asset factory, gates and checks."""
