"""Where landing files arrive and where bad ones are quarantined."""

from pathlib import Path

import dagster as dg


class LandingArea(dg.ConfigurableResource):
    """`<data_dir>/landing/<dataset>/` is read, never modified; `<data_dir>/quarantine/<dataset>/` is written."""

    data_dir: str

    def dataset_dir(self, dataset: str) -> Path:
        return Path(self.data_dir) / "landing" / dataset

    def quarantine_root(self) -> Path:
        return Path(self.data_dir) / "quarantine"
