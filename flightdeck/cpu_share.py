"""Processes working a DuckLake on one host share its cores.

Why: DuckDB gives every process a thread pool as large as the host's cores. On a DuckLake several steps
work at once (two backfills' loads, a load beside a dbt build), so a host runs several pools of that
size, and on a busy host the extra threads cost more in switching than they gain: two half-year loads at
once did more work in all than one load of the year. DuckDB has no setting that spans processes, so a
process that works holds a share (an flock on one slot file of a folder beside the warehouse; the kernel
releases it however the process ends) and, before each heavy statement, sets DuckDB's `threads` to the
host's cores divided among the shares held (`fit_threads`). Only between statements: DuckDB's pool is
the whole process's, and resizing it under a running query has made queries fail (reported in
elei-io/ducklake-cdc-extension#33).

A holder waiting on a lock steps aside (`aside`): its share would keep a core from the one it waits for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb

# Slot files per folder: more holders than this on one host is far past the point of sharing its cores.
SLOTS = 64


def host_cores() -> int:
    """The cores this process may run on (its affinity, as a container's CPU set limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def lock_first_free(paths: list[Path]) -> tuple[Path, int] | None:
    """The first of `paths` this process could flock exclusively, with the descriptor holding it (the
    lock goes with the descriptor, or the process); None when every one is held."""
    for path in paths:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return path, fd
        except BlockingIOError:
            os.close(fd)
    return None


def _slot_paths(folder: Path) -> list[Path]:
    return [folder / f"slot-{i}" for i in range(SLOTS)]


class _Share:
    """One holder's slot: its path and the descriptor holding its flock (None while stepped aside, or
    when every slot was held)."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.path, self.fd = folder, None, None

    def take(self) -> None:
        own = _own_paths()
        taken = lock_first_free([path for path in _slot_paths(self.folder) if path not in own])
        if taken is not None:  # every slot held: work without one (threads() still counts it)
            self.path, self.fd = taken

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
        self.path, self.fd = None, None


# This process's holders (normally one: the step it runs).
_held: list[_Share] = []


def _own_paths() -> set[Path]:
    return {s.path for s in _held if s.path is not None}


def holders(folder: Path) -> int:
    """How many shares are held in `folder` now, this process's included."""
    own = _own_paths()
    held = 0
    for path in _slot_paths(folder):
        if path in own:
            held += 1
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            held += 1
        finally:
            os.close(fd)  # a shared lock the probe took goes with its descriptor
    return held


@contextlib.contextmanager
def share(folder: Path) -> Iterator[None]:
    """Hold a share of the host's cores in `folder` until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    held = _Share(folder)
    held.take()
    _held.append(held)
    try:
        yield
    finally:
        _held.remove(held)
        held.release()


def threads() -> int | None:
    """This process's part of the host's cores now, or None when it holds no share."""
    if not _held:
        return None
    # A holder that found every slot taken counts too, beside the slots held.
    sharing = max(
        holders(folder) + sum(1 for s in _held if s.folder == folder and s.path is None)
        for folder in {s.folder for s in _held}
    )
    return max(1, host_cores() // sharing)


def fit_threads(con: duckdb.DuckDBPyConnection) -> None:
    """Before a heavy statement: size `con`'s DuckDB to this process's part of the cores, if it holds a
    share (otherwise DuckDB's own default stands)."""
    part = threads()
    if part is not None:
        con.execute(f"SET threads = {part}")


@contextlib.contextmanager
def aside() -> Iterator[None]:
    """Give up this process's shares until the block ends (a wait on a lock), then take them again."""
    stepped = list(_held)
    for held in stepped:
        held.release()
    try:
        yield
    finally:
        for held in stepped:
            if held in _held:
                held.take()
