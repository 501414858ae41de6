"""Cache the bytecode of the workflow modules, which the sandbox imports for every run.

Temporal's sandbox imports a workflow's module afresh for each workflow run it creates, to
keep runs apart. Python reads that module from its ``__pycache__`` if a current ``.pyc`` is
there, and compiles the source otherwise. With ``PYTHONDONTWRITEBYTECODE`` set (common in
container images, and in our own Dockerfile) nothing ever writes the ``.pyc``, so every
case start and every case brought back into the cache compiled ``workflows/case.py``
again: about a tenth of the worker's CPU when starting cases.

The worker writes the ``.pyc`` once at start-up, as Python itself would without the flag.
Python checks it against the source's modification time and size on every import, so an
edited module is never run from a stale cache: it is compiled as before.
"""

import importlib.util
import py_compile
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import structlog


def cache_bytecode(modules: Iterable[ModuleType]) -> list[Path]:
    """Write each module's ``.pyc`` where the import system looks for it; return those written.

    A module whose cache is already current is left alone. A cache that cannot be written
    (a read-only file system) is logged and skipped: the sandbox then compiles the source
    for each run, which is slower but correct.
    """
    written: list[Path] = []
    log = structlog.get_logger(__name__)
    for module in modules:
        source = getattr(module, "__file__", None)
        if source is None or not source.endswith(".py"):
            continue
        target = Path(importlib.util.cache_from_source(source))
        if _is_current(Path(source), target):
            continue
        try:
            py_compile.compile(source, cfile=str(target), doraise=True)
        except (OSError, py_compile.PyCompileError) as exc:
            log.warning(
                "workflow bytecode not cached; each workflow run compiles its module",
                module=module.__name__,
                error=type(exc).__name__,
            )
            continue
        written.append(target)
    return written


def _is_current(source: Path, cached: Path) -> bool:
    """Whether the import system would use ``cached`` for ``source`` (timestamp-based pyc)."""
    try:
        header = cached.read_bytes()[:16]
        stat = source.stat()
    except OSError:
        return False
    if len(header) < 16 or header[:4] != importlib.util.MAGIC_NUMBER:
        return False
    flags = int.from_bytes(header[4:8], "little")
    mtime = int.from_bytes(header[8:12], "little")
    size = int.from_bytes(header[12:16], "little")
    return flags == 0 and mtime == int(stat.st_mtime) & 0xFFFFFFFF and size == stat.st_size
