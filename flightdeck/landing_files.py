"""Pure logic of the landing-file sensor: which files are ready, and how to batch them into runs.

Kept free of Dagster so it is unit-tested directly; `sensors/landing_sensor.py` wires it to Dagster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from flightdeck.landing import LandingFileError, file_sha256, is_candidate, partition_date_of, symlink_error


@dataclass
class LandingCursor:
    """What the sensor has already acted on; serialised into the Dagster sensor cursor.

    requested: file name -> [size, mtime_ns, sha256] of the version a run was requested for.
    rejected:  file name -> [size, mtime_ns] of a version quarantined for its name (reported once).
    """

    requested: dict[str, list] = field(default_factory=dict)
    rejected: dict[str, list] = field(default_factory=dict)

    @classmethod
    def load(cls, raw: str | None) -> LandingCursor:
        data = json.loads(raw) if raw else {}
        return cls(requested=data.get("requested", {}), rejected=data.get("rejected", {}))

    def dump(self) -> str:
        return json.dumps({"requested": self.requested, "rejected": self.rejected}, sort_keys=True)


@dataclass(frozen=True)
class ReadyFile:
    path: Path
    partition_date: dt.date
    sha256: str
    signature: list  # [size, mtime_ns, sha256]


@dataclass(frozen=True)
class RejectedFile:
    error: LandingFileError
    size_mtime: list  # [size, mtime_ns] of the version rejected: reported once, until it changes


@dataclass
class ScanResult:
    ready: list[ReadyFile] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)
    settling: list[str] = field(default_factory=list)  # modified too recently: maybe still being written


# A file that becomes settled this soon is waited for within the tick (and looked at once more) rather
# than left to the next tick, which comes only after the sensor daemon's loop (5 s or more).
MAX_WAIT_IN_TICK_SECONDS = 2.0


def scan(
    dataset_dir: Path,
    cursor: LandingCursor,
    start: dt.date,
    end_exclusive: dt.date,
    settle_seconds: float,
    now: float | None = None,
) -> ScanResult:
    """New or changed files that have been quiet for `settle_seconds`, and newly bad file names.

    Quiet means two looks `settle_seconds` apart found the same size and modification time: the second
    look is this one when the file was last modified that long ago, or one taken a moment later in the
    same tick when the file is only just too young.
    """
    now = time.time() if now is None else now
    result = ScanResult()
    if not dataset_dir.is_dir():
        return result
    young: list[tuple[Path, dt.date, list, float]] = []
    for path in sorted(dataset_dir.iterdir()):
        if not is_candidate(path):
            continue
        size_mtime = _size_mtime(path)
        if size_mtime is None:
            continue  # renamed or removed since the folder was listed: the next tick sees what is there
        try:
            day, _ = partition_date_of(path, start, end_exclusive)
            if path.is_symlink():
                raise symlink_error(path)
        except LandingFileError as exc:
            if cursor.rejected.get(path.name) != size_mtime:
                result.rejected.append(RejectedFile(exc, size_mtime))
            continue
        previous = cursor.requested.get(path.name)
        if previous and previous[:2] == size_mtime:
            continue  # unchanged since its run was requested
        quiet_for = now - size_mtime[1] / 1e9
        if quiet_for < settle_seconds:
            young.append((path, day, size_mtime, settle_seconds - quiet_for))
            continue
        _take(result, cursor, path, day, size_mtime)

    waits = [wait for *_, wait in young if wait <= MAX_WAIT_IN_TICK_SECONDS]
    if waits:
        time.sleep(max(waits))
    for path, day, size_mtime, wait in young:
        if wait <= MAX_WAIT_IN_TICK_SECONDS and _size_mtime(path) == size_mtime:
            _take(result, cursor, path, day, size_mtime)
        else:
            result.settling.append(path.name)
    return result


def _size_mtime(path: Path) -> list | None:
    """[size, mtime_ns] of the file itself (a link's own: its target is never looked at); None if gone."""
    try:
        stat = path.lstat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _take(result: ScanResult, cursor: LandingCursor, path: Path, day: dt.date, size_mtime: list) -> None:
    """A settled file: ready unless its content is the one already requested (only touched)."""
    try:
        digest = file_sha256(path)
    except (OSError, LandingFileError):
        return  # vanished or swapped for a link between the looks: judged again next tick
    previous = cursor.requested.get(path.name)
    if previous and previous[2] == digest:
        cursor.requested[path.name] = [*size_mtime, digest]  # touched, same content: nothing to do
        return
    result.ready.append(ReadyFile(path, day, digest, [*size_mtime, digest]))


def contiguous_ranges(days: list[dt.date], max_days: int) -> list[tuple[dt.date, dt.date]]:
    """Group dates into runs of consecutive days, each at most `max_days` long."""
    ranges: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if ranges and day == ranges[-1][1] + dt.timedelta(days=1) and (day - ranges[-1][0]).days < max_days:
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def run_key(files: list[ReadyFile], dataset: str) -> str:
    """Identity + content of the files a run loads: an identical re-delivery maps to the same key."""
    identity = "|".join(f"{f.path.name}:{f.sha256}" for f in sorted(files, key=lambda f: f.path.name))
    return f"{dataset}-landing:" + hashlib.sha256(identity.encode()).hexdigest()[:24]
