"""The raw assets of the daily datasets pushed as files to landing/<name>/: raw/flights, and every other
dataset declared with `pushed=True` in flightdeck/datasets.py (a new one needs no edit here)."""

from assets.common.daily_raw import daily_raw_asset, raw_key
from flightdeck.datasets import DAILY_DATASETS, FLIGHTS

LANDING_DATASETS = [dataset for dataset in DAILY_DATASETS if dataset.pushed]
LANDING_ASSETS = [daily_raw_asset(dataset) for dataset in LANDING_DATASETS]
RAW_FLIGHTS_KEY = raw_key(FLIGHTS)
[raw_flights] = [asset for asset in LANDING_ASSETS if asset.key == RAW_FLIGHTS_KEY]
