"""flightdeck's assets. Two Dagster APIs used here on purpose are marked beta/preview in 1.13
(`backfill_policy`, `Definitions.map_asset_specs`); their warnings are silenced once, here."""

import warnings

import dagster as dg

warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
