"""The landing-file contract: where daily files live, what a valid one looks like, and file quarantine.

`landing/<dataset>/YYYY-MM-DD.{csv,csv.gz,parquet}`, one file per local date, with a header row of
exactly the dataset's columns. A file that breaks the contract is copied (never moved: the landing file
is the sender's and stays untouched) to `quarantine/<dataset>/` with a JSON sidecar giving the reason.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pyarrow.parquet as pq

FORMATS = (".csv.gz", ".csv", ".parquet")
# Names writers use while a file is still being written; never read such a file.
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")
# The only spelling of a partition's date in a file name (Python's parser also takes 2013-W01-1).
DATE_NAME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Uncompressed bytes a landing file may hold; past it the file is quarantined unread (a decompression
# bomb, or a delivery far beyond any real day). FLIGHTDECK_MAX_FILE_MB sets it.
DEFAULT_MAX_FILE_BYTES = 2 << 30
CHUNK_BYTES = 1 << 20
# A quarantine copy's name beyond this (or with bytes that are not printable UTF-8) is shortened.
MAX_COPY_NAME_BYTES = 120


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
    """False for hidden files, directories and files still being written (temp names). A symbolic link
    is a candidate, so that it is rejected with its reason (never followed)."""
    name = path.name
    if name.startswith(".") or name.endswith(TEMP_SUFFIXES):
        return False
    try:
        mode = path.lstat().st_mode
    except OSError:  # gone since the folder was listed (renamed mid-scan)
        return False
    return stat.S_ISREG(mode) or stat.S_ISLNK(mode)


def printable(name: str) -> str:
    """A file name as it can be shown in a log, a message or JSON: odd bytes and controls escaped."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def symlink_error(path: Path) -> LandingFileError:
    return LandingFileError(path, "symlink", "a symbolic link; its target is never read")


@contextmanager
def open_regular(path: Path) -> Iterator:
    """The file opened for reading, never through a symbolic link (O_NOFOLLOW: no race between a check
    and the open), and only if it is a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if path.is_symlink():
            raise symlink_error(path) from None
        raise LandingFileError(path, "unreadable", f"cannot be opened ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise LandingFileError(path, "not_a_file", "not a regular file")
        yield handle


def file_sha256(path: Path) -> str:
    with open_regular(path) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


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
        if not DATE_NAME.fullmatch(stem):
            raise ValueError(stem)
        day = dt.date.fromisoformat(stem)
    except ValueError:
        raise LandingFileError(path, "bad_name", f"{printable(stem)!r} is not a YYYY-MM-DD date") from None
    if not start <= day < end_exclusive:
        raise LandingFileError(
            path,
            "out_of_range",
            f"{day} is outside the partition range {start} .. {end_exclusive} (exclusive)",
        )
    return day, fmt


def find_partition_file(dataset_dir: Path, day: dt.date) -> Path:
    found = [dataset_dir / f"{day.isoformat()}{fmt}" for fmt in FORMATS]
    found = [p for p in found if p.is_symlink() or p.exists()]  # a link is found, to be rejected
    if not found:
        raise MissingLandingFileError(
            f"no landing file for partition {day}: expected {dataset_dir / (day.isoformat() + '.csv')}"
            f" (or .csv.gz / .parquet)"
        )
    if len(found) > 1:
        raise LandingFileError(found[0], "ambiguous", f"several files for {day}: {[p.name for p in found]}")
    return found[0]


class _Hashing:
    """A file object that hashes what is read through it: the raw bytes, compressed or not."""

    def __init__(self, handle, digest):
        self.handle, self.digest = handle, digest

    def read(self, size: int = -1) -> bytes:
        chunk = self.handle.read(size)
        self.digest.update(chunk)
        return chunk


def _stream_csv(path: Path, fmt: str, max_bytes: int) -> tuple[str, int, str, bool]:
    """(sha256, size, header line, has data rows) of a CSV (plain or gzip), read as a stream: memory
    stays at one chunk whatever the file holds, and reading stops past `max_bytes` uncompressed."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    head, header, has_body, total = b"", None, False, 0
    with open_regular(path) as handle:
        raw = _Hashing(handle, digest)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if fmt == "csv.gz" else raw
        try:
            while chunk := stream.read(CHUNK_BYTES):
                if total + len(chunk) > max_bytes:
                    what = "uncompressed " if fmt == "csv.gz" else ""
                    raise LandingFileError(
                        path, "too_large", f"more than {max_bytes:,} bytes {what}(FLIGHTDECK_MAX_FILE_MB)"
                    )
                if not chunk.isascii() or decoder.getstate()[0]:  # ASCII is UTF-8 as it is
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        raise LandingFileError(
                            path, "bad_encoding", f"not UTF-8 at byte {total + exc.start}"
                        ) from None
                total += len(chunk)
                if header is None:
                    head += chunk
                    if b"\n" in head or len(head) > CHUNK_BYTES:
                        header, _, rest = head.partition(b"\n")
                        has_body = bool(rest) and not rest.isspace()
                        head = b""
                elif not has_body:
                    has_body = not chunk.isspace()
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise LandingFileError(path, "bad_encoding", f"not UTF-8 at byte {total + exc.start}") from None
        except (OSError, EOFError, zlib.error) as exc:
            if fmt != "csv.gz":
                raise LandingFileError(path, "unreadable", f"read failed ({exc})") from None
            raise LandingFileError(path, "bad_compression", f"not a complete gzip stream ({exc})") from None
        size = os.fstat(handle.fileno()).st_size
    if header is None:
        header = head
    return digest.hexdigest(), size, header.decode("utf-8"), has_body


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


def inspect(
    path: Path,
    expected_columns: list[str],
    start: dt.date,
    end_exclusive: dt.date,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> LandingFile:
    """Check everything about a file that can be checked before loading it; raise LandingFileError."""
    day, fmt = partition_date_of(path, start, end_exclusive)
    if fmt == "parquet":
        with open_regular(path) as handle:  # a symbolic link is refused here, unread
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise LandingFileError(path, "empty_file", "zero bytes")
            try:
                meta = pq.read_metadata(handle)
            except Exception as exc:
                raise LandingFileError(path, "bad_parquet", f"not a readable Parquet file ({exc})") from None
            handle.seek(0)
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        _check_header(path, meta.schema.names, expected_columns)
        if meta.num_rows == 0:
            raise LandingFileError(path, "no_data_rows", "the file has a schema but no rows")
        uncompressed = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if uncompressed > max_bytes:
            raise LandingFileError(
                path,
                "too_large",
                f"{uncompressed:,} bytes uncompressed, more than {max_bytes:,} (FLIGHTDECK_MAX_FILE_MB)",
            )
    else:
        digest, size, header, has_body = _stream_csv(path, fmt, max_bytes)
        if size == 0:
            raise LandingFileError(path, "empty_file", "zero bytes")
        _check_header(path, [c.strip().strip('"') for c in header.rstrip("\r").split(",")], expected_columns)
        if not has_body:
            raise LandingFileError(path, "no_data_rows", "header only, no data rows")
    return LandingFile(path=path, partition_date=day, format=fmt, sha256=digest, size=size)


def copy_name(name: str) -> str:
    """`name` as a quarantine copy can be called: as it is when short and printable, otherwise its
    printable start and a hash of the whole name (the sidecar keeps the original, escaped)."""
    if name.isprintable() and printable(name) == name and len(name.encode()) <= MAX_COPY_NAME_BYTES:
        return name
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", printable(name))[:60]
    return f"{safe}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"


def quarantine_bytes(
    content: bytes | BinaryIO | None,
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
    target = target_dir / f"{stamp}__{copy_name(name)}"
    if isinstance(content, bytes):
        target.write_bytes(content)
    elif content is not None:  # a file: copied as a stream, whatever its size
        with open(target, "wb") as out:
            shutil.copyfileobj(content, out, CHUNK_BYTES)
    sidecar = {
        "source_file": printable(source),
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
    details = (error.path.name, str(error.path), error.reason, error.detail, quarantine_root, dataset, run_id)
    try:
        with open_regular(error.path) as handle:
            return quarantine_bytes(handle, *details)
    except LandingFileError:  # a link, a vanished or unreadable file: the sidecar alone says why
        return quarantine_bytes(None, *details)
