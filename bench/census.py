"""A census of a benchmark process's memory, printed on SIGUSR1, to trace what grows.

``BENCH_TUNING=census`` installs it in the benchmark worker; scenario 5 signals the worker
after each step. Each census is one line, ``CENSUS {json}``, on the process's output (the
worker's log), with:

- ``rss_mib``: resident memory, after the collection;
- ``unreachable_collected``: the cyclic garbage that full collection found;
- ``python_blocks``: objects and buffers Python's allocator holds (``sys.getallocatedblocks``)
  after a full collection, so what is still reachable;
- ``malloc``: glibc's view (``mallinfo2``): bytes in use and free inside its heap, and bytes
  in its own mappings. Memory outside both (RSS minus what malloc holds) is native code's
  own mappings or the interpreter's arenas;
- ``arenas``: per glibc arena, what it holds from the system and its free chunks by size
  (under 1 KiB, under 64 KiB, larger);
- ``types``: the 40 most numerous live object types and their counts.

Growth in ``python_blocks`` and ``types`` between steps is Python objects kept per case;
growth in RSS with neither is fragmentation or native memory (the Temporal core is Rust).
It is a diagnostic: a full collection over a large heap pauses the worker for seconds.
"""

import ctypes
import gc
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any
from xml.etree import ElementTree

from bench.common import ProcessCpu

TOP_TYPES = 40


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc() -> ctypes.CDLL | None:
    """The C library, where it is glibc (with ``mallinfo2``); None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
    except (OSError, AttributeError):
        return None
    return libc


def _malloc(libc: ctypes.CDLL) -> dict[str, float]:
    """The C heap: in use, free inside it, and in its own mappings (MiB)."""
    info = libc.mallinfo2()
    mib = 1024 * 1024
    return {
        "in_use_mib": round(info.uordblks / mib, 1),
        "free_mib": round(info.fordblks / mib, 1),
        "mapped_mib": round(info.hblkhd / mib, 1),
    }


def _malloc_arenas(libc: ctypes.CDLL) -> list[dict[str, float]]:
    """Per glibc arena: memory it holds from the system, and its free chunks by size (MiB)."""
    libc.fopen.restype = ctypes.c_void_p  # a FILE *, not the default int
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("w+b") as out:
        stream = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, stream)
        libc.fclose(stream)
        # glibc's own report on this process, not outside input
        root = ElementTree.fromstring(Path(out.name).read_bytes())  # noqa: S314
    mib = 1024 * 1024
    arenas = []
    for heap in root.iter("heap"):
        free = {"under_1k": 0, "under_64k": 0, "larger": 0}
        for size in heap.iter("size"):
            high, total = int(size.get("to", 0)), int(size.get("total", 0))
            band = "under_1k" if high < 1024 else "under_64k" if high < 65536 else "larger"
            free[band] += total
        system = next(
            (
                int(item.get("size", 0))
                for item in heap.iter("system")
                if item.get("type") == "current"
            ),
            0,
        )
        arenas.append(
            {"system_mib": round(system / mib, 1)}
            | {f"free_{band}_mib": round(total / mib, 1) for band, total in free.items()}
        )
    return arenas


def census() -> dict[str, Any]:
    """Memory as it stands after a full collection."""
    began = time.monotonic()
    unreachable = gc.collect()
    objects = gc.get_objects()
    types = Counter(type(item).__qualname__ for item in objects)
    libc = _glibc()
    return {
        "rss_mib": ProcessCpu(os.getpid()).rss_mib(),
        "unreachable_collected": unreachable,
        "python_blocks": sys.getallocatedblocks(),
        "tracked_objects": len(objects),
        "malloc": _malloc(libc) if libc else {},
        "arenas": _malloc_arenas(libc) if libc else [],
        "types": dict(types.most_common(TOP_TYPES)),
        "seconds": round(time.monotonic() - began, 2),
    }


def _print_census(_signal: int, _frame: FrameType | None) -> None:
    print("CENSUS " + json.dumps(census()), flush=True)


def install() -> None:
    """Print a census now (what the imports hold) and whenever the process gets SIGUSR1."""
    signal.signal(signal.SIGUSR1, _print_census)
    _print_census(signal.SIGUSR1, None)
