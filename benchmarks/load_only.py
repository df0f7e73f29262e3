"""flightdeck's validate-and-load of a window, without Dagster: contract checks, validation, load.

Usage: python benchmarks/load_only.py DATA_DIR FIRST_DAY LAST_DAY  (prints rows read and work seconds)
"""

import datetime as dt
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
warnings.filterwarnings("ignore")

import duckdb  # noqa: E402

from assets.common.gated_load import contract_checked_files  # noqa: E402
from flightdeck.datasets import FLIGHTS  # noqa: E402
from flightdeck.loader import Gates, load_window  # noqa: E402
from resources.landing import LandingArea  # noqa: E402
from resources.warehouse import configure  # noqa: E402

data = Path(sys.argv[1])
first, last = dt.date.fromisoformat(sys.argv[2]), dt.date.fromisoformat(sys.argv[3])
started = time.perf_counter()
files, problems = contract_checked_files(LandingArea(data_dir=str(data)), FLIGHTS, (first, last), "bench")
con = configure(duckdb.connect(str(data / "load_only.duckdb")), "1GB")
gates = Gates(max_quarantine_rate=0.01, min_volume_fraction=0.5)  # the defaults of raw/flights
key_columns = ["dep_time", "arr_delay", "tailnum", "air_time"]
loads = load_window(con, FLIGHTS, files, (first, last), "bench", gates, key_columns, problems)
con.close()
# rows read, and seconds spent in the work itself (contract checks, validation, load), without start-up
print(sum(load.rows_read for load in loads), round(time.perf_counter() - started, 3))
