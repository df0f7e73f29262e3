"""The landing-file contract: where daily files live, what a valid one looks like, and file quarantine.

`landing/<dataset>/YYYY-MM-DD.{csv,csv.gz,parquet}`, one file per local date, with a header row of
exactly the dataset's columns. A file that breaks the contract is copied (never moved: the landing file
is the sender's and stays untouched) to `quarantine/<dataset>/` with a JSON sidecar giving the reason.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

FORMATS = (".csv.gz", ".csv", ".parquet")
# Names writers use while a file is still being written; never read such a file.
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


class LandingFileError(Exception):
    """A landing file breaks the contract. `reason` is a stable code; the message names the file."""

    def __init__(self, path: Path, reason: str, detail: str):
        self.path, self.reason, self.detail = Path(path), reason, detail
        super().__init__(f"{path}: {reason}: {detail}")


class MissingLandingFileError(Exception):
    pass


@dataclass(frozen=True)
class LandingFile:
    path: Path
    partition_date: dt.date
    format: str  # "csv", "csv.gz" or "parquet"
    sha256: str
    size: int


def is_candidate(path: Path) -> bool:
    """False for hidden files, directories and files still being written (temp names)."""
    name = path.name
    return path.is_file() and not name.startswith(".") and not name.endswith(TEMP_SUFFIXES)


def split_name(path: Path) -> tuple[str, str]:
    """('2013-01-01', 'csv.gz') for '2013-01-01.csv.gz'; the format is '' when not one of ours."""
    for fmt in FORMATS:
        if path.name.endswith(fmt):
            return path.name[: -len(fmt)], fmt.lstrip(".")
    return path.name.rsplit(".", 1)[0], ""


def partition_date_of(path: Path, start: dt.date, end_exclusive: dt.date) -> tuple[dt.date, str]:
    """The partition date a file name claims, checked against the partition range."""
    stem, fmt = split_name(path)
    if not fmt:
        raise LandingFileError(path, "unsupported_format", f"expected one of {', '.join(FORMATS)}")
    try:
        day = dt.date.fromisoformat(stem)
        if len(stem) != 10:
            raise ValueError(stem)
    except ValueError:
        raise LandingFileError(path, "bad_name", f"{stem!r} is not a YYYY-MM-DD date") from None
    if not start <= day < end_exclusive:
        raise LandingFileError(
            path,
            "out_of_range",
            f"{day} is outside the partition range {start} .. {end_exclusive} (exclusive)",
        )
    return day, fmt


def find_partition_file(dataset_dir: Path, day: dt.date) -> Path:
    found = [dataset_dir / f"{day.isoformat()}{fmt}" for fmt in FORMATS]
    found = [p for p in found if p.is_file()]
    if not found:
        raise MissingLandingFileError(
            f"no landing file for partition {day}: expected {dataset_dir / (day.isoformat() + '.csv')}"
            f" (or .csv.gz / .parquet)"
        )
    if len(found) > 1:
        raise LandingFileError(found[0], "ambiguous", f"several files for {day}: {[p.name for p in found]}")
    return found[0]


def _csv_bytes(path: Path, fmt: str, raw: bytes) -> bytes:
    if fmt == "csv.gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise LandingFileError(path, "bad_compression", f"not a complete gzip stream ({exc})") from None
    return raw


def _header_and_body(path: Path, data: bytes) -> tuple[str, bytes | str]:
    """The first line and the rest; raises bad_encoding unless the file is UTF-8."""
    if data.isascii():  # UTF-8 as it is: no need to decode the whole file (halves the contract checks)
        header, _, body = data.partition(b"\n")
        return header.decode("ascii"), body
    try:
        header, _, body = data.decode("utf-8").partition("\n")
    except UnicodeDecodeError as exc:
        raise LandingFileError(path, "bad_encoding", f"not UTF-8 at byte {exc.start}") from None
    return header, body


def _check_header(path: Path, found: list[str], expected: list[str]) -> None:
    if found == expected:
        return
    missing = [c for c in expected if c not in found]
    extra = [c for c in found if c not in expected]
    if len(found) == 1 and len(expected) > 1:
        detail = f"header has one column {found[0][:60]!r}: wrong delimiter? (expected ',')"
        raise LandingFileError(path, "bad_delimiter", detail)
    detail = (
        f"missing columns {missing}, unexpected columns {extra}"
        if missing or extra
        else "columns out of order"
    )
    raise LandingFileError(path, "bad_columns", f"{detail}; expected {expected}")


def inspect(path: Path, expected_columns: list[str], start: dt.date, end_exclusive: dt.date) -> LandingFile:
    """Check everything about a file that can be checked before loading it; raise LandingFileError."""
    day, fmt = partition_date_of(path, start, end_exclusive)
    content = path.read_bytes()
    size = len(content)
    if size == 0:
        raise LandingFileError(path, "empty_file", "zero bytes")
    if fmt == "parquet":
        try:
            meta = pq.read_metadata(path)
        except Exception as exc:
            raise LandingFileError(path, "bad_parquet", f"not a readable Parquet file ({exc})") from None
        _check_header(path, meta.schema.names, expected_columns)
        if meta.num_rows == 0:
            raise LandingFileError(path, "no_data_rows", "the file has a schema but no rows")
    else:
        header, body = _header_and_body(path, _csv_bytes(path, fmt, content))
        _check_header(path, [c.strip().strip('"') for c in header.rstrip("\r").split(",")], expected_columns)
        if not body or body.isspace():  # as `not body.strip()`, without copying a large file's text
            raise LandingFileError(path, "no_data_rows", "header only, no data rows")
    digest = hashlib.sha256(content).hexdigest()
    return LandingFile(path=path, partition_date=day, format=fmt, sha256=digest, size=size)


def quarantine_bytes(
    content: bytes | None,
    name: str,
    source: str,
    reason: str,
    detail: str,
    quarantine_root: Path,
    dataset: str,
    run_id: str,
) -> Path:
    """Write `content` to quarantine/<dataset>/ beside a JSON sidecar with the reason; return its path."""
    target_dir = quarantine_root / dataset
    target_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = target_dir / f"{stamp}__{name}"
    if content is not None:
        target.write_bytes(content)
    sidecar = {
        "source_file": source,
        "reason": reason,
        "detail": detail,
        "run_id": run_id,
        "quarantined_at": dt.datetime.now(dt.UTC).isoformat(),
        "copy": target.name,
    }
    target.with_name(target.name + ".reason.json").write_text(json.dumps(sidecar, indent=2))
    return target


def quarantine_file(error: LandingFileError, quarantine_root: Path, dataset: str, run_id: str) -> Path:
    """Copy the offending file (the landing file stays untouched) to quarantine/<dataset>/."""
    content = error.path.read_bytes() if error.path.is_file() else None
    return quarantine_bytes(
        content,
        error.path.name,
        str(error.path),
        error.reason,
        error.detail,
        quarantine_root,
        dataset,
        run_id,
    )
