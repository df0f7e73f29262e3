"""pandera models: the single source of truth for every raw dataset's columns, types and rules.

The models are written for the real 2013 data, not an idealised version of it: cancelled flights have
no dep_time, 717 completed flights have no arr_delay, 2,512 flights have no tailnum. Reference-data gaps
(tail numbers missing from planes, destinations missing from airports) are reported by warning checks in
dbt, never used to reject a flight.

The loader compiles these models to DuckDB predicates (see `flightdeck/sql_validation.py`) so validation runs
vectorised inside DuckDB; tests run pandera itself on the same data and assert both agree.
"""

from __future__ import annotations

import re

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

HHMM = {"ge": 1, "le": 2400}
AIRPORT_CODE = r"^[A-Z0-9]{3}$"
ORIGINS = ["EWR", "JFK", "LGA"]


# A number in any spelling a JSON or CSV writer may choose: 270, 270.0, 2.7e2, .27e3.
NUMBER_SPELLING = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
# Significant digits up to which a decimal's nearest double is whole exactly when the decimal is.
MAX_SIGNIFICANT_DIGITS = 15


def whole_number_text(value: object) -> object:
    """`'270.0'` or `'2.7e2'` as `'270'`: the value of a whole number however it is spelled. Anything
    else is left as it is, for the column's type check to judge (`'270.5'` stays a wrong type)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if re.fullmatch(r"[+-]?[0-9]+", text) or not re.fullmatch(NUMBER_SPELLING, text):
        return value
    mantissa = re.match(r"[+-]?([0-9.]+)", text).group(1).replace(".", "").strip("0")
    number = float(text)
    if len(mantissa) <= MAX_SIGNIFICANT_DIGITS and number.is_integer():
        return str(int(number))
    return value


class LandingModel(pa.DataFrameModel):
    """A model of landing data, which arrives as text in formats whose numbers have no integer/float
    distinction (JSON, CSV): an integer column takes a whole number in any spelling."""

    @pa.dataframe_parser
    @classmethod
    def whole_numbers(cls, frame: pd.DataFrame) -> pd.DataFrame:
        integers = [
            name
            for name, column in cls.to_schema().columns.items()
            if str(column.dtype) in ("Int64", "int64") and name in frame
        ]
        for name in integers:
            frame[name] = frame[name].map(whole_number_text)
        return frame


class FlightsSchema(LandingModel):
    """One row per scheduled departure from a New York airport (the BTS on-time columns)."""

    year: Series[pd.Int64Dtype] = pa.Field(ge=1987, le=2100)
    month: Series[pd.Int64Dtype] = pa.Field(ge=1, le=12)
    day: Series[pd.Int64Dtype] = pa.Field(ge=1, le=31)
    dep_time: Series[pd.Int64Dtype] = pa.Field(nullable=True, **HHMM)
    sched_dep_time: Series[pd.Int64Dtype] = pa.Field(**HHMM)
    dep_delay: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=-1440, le=1440)
    arr_time: Series[pd.Int64Dtype] = pa.Field(nullable=True, **HHMM)
    sched_arr_time: Series[pd.Int64Dtype] = pa.Field(**HHMM)
    arr_delay: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=-1440, le=1440)
    carrier: Series[pd.StringDtype] = pa.Field(str_matches=r"^[A-Z0-9]{2}$")
    flight: Series[pd.Int64Dtype] = pa.Field(ge=1, le=999_999)
    tailnum: Series[pd.StringDtype] = pa.Field(nullable=True, str_matches=r"^[A-Z0-9]{2,7}$")
    origin: Series[pd.StringDtype] = pa.Field(isin=ORIGINS)
    dest: Series[pd.StringDtype] = pa.Field(str_matches=AIRPORT_CODE)
    air_time: Series[pd.Float64Dtype] = pa.Field(nullable=True, gt=0, le=1440)
    distance: Series[pd.Float64Dtype] = pa.Field(gt=0, le=10_000)
    hour: Series[pd.Int64Dtype] = pa.Field(ge=0, le=23)
    minute: Series[pd.Int64Dtype] = pa.Field(ge=0, le=59)
    time_hour: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"})

    class Config:
        strict = True
        ordered = True
        coerce = True


# The natural key of a flight. Within one partition it must be unique; repeats are duplicates.
FLIGHTS_NATURAL_KEY = ("flight_date", "carrier", "flight", "origin")


def column_names(model: type[pa.DataFrameModel]) -> list[str]:
    """The contract's column order, straight from the model."""
    return list(model.to_schema().columns)


class WeatherSchema(LandingModel):
    """Hourly observations at the three New York airports, as the weather API returns them.

    Allowed nulls (the real data has them; a null reading is not a wrong reading): temp, dewp, humid (1
    hour), wind_dir (460), wind_speed (4), wind_gust (most hours: only reported in gusts), pressure
    (2,729). Quarantined: readings outside physical ranges, e.g. the one wind speed of 1,048 mph
    (the strongest surface gust ever measured is 253 mph).
    """

    origin: Series[pd.StringDtype] = pa.Field(isin=ORIGINS)
    time_hour: Series[pd.DatetimeTZDtype] = pa.Field(dtype_kwargs={"unit": "ns", "tz": "UTC"})
    temp: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=-60, le=130)
    dewp: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=-80, le=100)
    humid: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=0, le=100)
    wind_dir: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0, le=360)
    wind_speed: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=0, le=253)
    wind_gust: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=0, le=253)
    precip: Series[pd.Float64Dtype] = pa.Field(ge=0, le=20)
    pressure: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=850, le=1100)
    visib: Series[pd.Float64Dtype] = pa.Field(ge=0, le=100)

    class Config:
        strict = True
        ordered = True
        coerce = True


class AirlinesSchema(pa.DataFrameModel):
    """Carriers (reference database table `airlines`)."""

    carrier: Series[pd.StringDtype] = pa.Field(unique=True, str_matches=r"^[A-Z0-9]{2}$")
    name: Series[pd.StringDtype]

    class Config:
        strict = True
        coerce = True


class AirportsSchema(pa.DataFrameModel):
    """Airports (reference database table `airports`); 3 real airports have no IANA time zone."""

    faa: Series[pd.StringDtype] = pa.Field(unique=True, str_matches=AIRPORT_CODE)
    name: Series[pd.StringDtype]
    lat: Series[pd.Float64Dtype] = pa.Field(ge=-90, le=90)
    lon: Series[pd.Float64Dtype] = pa.Field(ge=-180, le=180)
    alt: Series[pd.Int64Dtype] = pa.Field(ge=-1500, le=30_000)
    tz: Series[pd.Int64Dtype] = pa.Field(ge=-12, le=14)
    dst: Series[pd.StringDtype] = pa.Field(isin=["A", "U", "N"])
    tzone: Series[pd.StringDtype] = pa.Field(nullable=True)

    class Config:
        strict = True
        coerce = True


class PlanesSchema(pa.DataFrameModel):
    """Aircraft (reference database table `planes`); year and speed are often unknown."""

    tailnum: Series[pd.StringDtype] = pa.Field(unique=True, str_matches=r"^[A-Z0-9]{2,7}$")
    year: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=1900, le=2100)
    type: Series[pd.StringDtype]
    manufacturer: Series[pd.StringDtype]
    model: Series[pd.StringDtype]
    engines: Series[pd.Int64Dtype] = pa.Field(ge=0, le=8)
    seats: Series[pd.Int64Dtype] = pa.Field(ge=0, le=1000)
    speed: Series[pd.Float64Dtype] = pa.Field(nullable=True, ge=0)
    engine: Series[pd.StringDtype]

    class Config:
        strict = True
        coerce = True


REFERENCE_SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "airlines": AirlinesSchema,
    "airports": AirportsSchema,
    "planes": PlanesSchema,
}
