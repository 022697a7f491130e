"""The server process itself: its descriptor limit, its event loop, its heap."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource


def raise_open_files_limit() -> int:
    """Thousands of connections need thousands of descriptors: raise the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


#: The collector's thresholds once serving. CPython's first generation is collected every 700
#: net container allocations: a routed message makes dozens (elements, dicts, events), so the
#: server collected many times a second, promoting short-lived stanzas to older generations it
#: then walked again. With 20,000 most of them die before a collection sees them.
GC_THRESHOLDS = (20_000, 10, 10)


def settle_heap() -> int:
    """Move what start-up built out of the garbage collector's sight; the objects moved.

    Modules, dataset definitions, compiled statements, templates and the like live as
    long as the process, yet every full (generation 2) collection walked them all: a
    pause of 50–75 ms at a random moment of an alert's fan-out (bench/push_latency.py).
    ``gc.freeze()`` after a collection puts them in the permanent generation, so later
    collections walk only what was made since (sessions, stanzas in flight).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    return gc.get_freeze_count()


def install_uvloop() -> bool:
    """Use uvloop when installed (faster event loop)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return False
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
