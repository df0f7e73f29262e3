"""The cyclic garbage collector paused while the definitions load, then frozen out of its view.

Every process that loads the definitions (CLI, run worker, daemon, webserver) keeps what their imports
build until it exits; the collector would otherwise traverse those millions of objects again and again,
at start and at exit of every run. CPython's documented `gc.freeze()` use, but undocumented in effect on
Dagster's start-up: part `gc_pause` of internals/.
"""

import gc

from internals import enabled


def pause() -> None:
    if enabled("gc_pause"):
        gc.disable()


def freeze() -> None:
    """After the definitions are built: what exists now is never collected again; collection resumes."""
    if enabled("gc_pause"):
        gc.freeze()
        gc.enable()
