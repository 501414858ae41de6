"""The worker caches the workflow modules' bytecode, which the sandbox reads on every run.

The checks import the module again through Python's own loader and count the times it
compiles source: a usable cache means no compiling.
"""

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

import worker
from caseclock.bytecode import cache_bytecode


def _module(folder: Path, name: str, source: str) -> ModuleType:
    (folder / f"{name}.py").write_text(source)
    return _import(folder / f"{name}.py")


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths Python's loader compiles from source from now on (no .pyc written)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    compiled: list[str] = []
    original = importlib.machinery.SourceFileLoader.source_to_code

    def counting(
        self: importlib.machinery.SourceFileLoader, data: bytes, path: str, **options: int
    ) -> object:
        compiled.append(path)
        return original(self, data, path, **options)  # type: ignore[arg-type, call-arg]

    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "source_to_code", counting)
    return compiled


def test_an_import_after_caching_does_not_compile(tmp_path: Path, compiles: list[str]) -> None:
    module = _module(tmp_path, "sample_workflow", "VALUE = 1\n")
    _import(tmp_path / "sample_workflow.py")
    assert len(compiles) == 2  # the flag stops Python from writing a cache itself

    written = cache_bytecode([module])
    compiled = len(compiles)

    source = tmp_path / "sample_workflow.py"
    assert written == [Path(importlib.util.cache_from_source(str(source)))]
    assert _import(source).VALUE == 1
    assert len(compiles) == compiled


def test_a_current_cache_is_kept_and_a_stale_one_replaced(
    tmp_path: Path, compiles: list[str]
) -> None:
    module = _module(tmp_path, "edited_workflow", "VALUE = 1\n")
    assert cache_bytecode([module]) != []
    assert cache_bytecode([module]) == []

    source = tmp_path / "edited_workflow.py"
    source.write_text("VALUE = 22\n")
    stat = source.stat()
    os.utime(source, (stat.st_atime, stat.st_mtime + 5))
    assert _import(source).VALUE == 22  # the stale cache is not used

    assert cache_bytecode([module]) != []
    compiled = len(compiles)
    assert _import(source).VALUE == 22
    assert len(compiles) == compiled


def test_a_cache_that_cannot_be_written_is_skipped(tmp_path: Path, compiles: list[str]) -> None:
    module = _module(tmp_path, "unwritable_workflow", "VALUE = 1\n")
    (tmp_path / "__pycache__").write_text("a file where the cache folder would go")

    assert cache_bytecode([module]) == []
    assert _import(tmp_path / "unwritable_workflow.py").VALUE == 1


def test_the_worker_caches_its_workflow_modules(compiles: list[str]) -> None:
    modules = [sys.modules[workflow.__module__] for workflow in worker.WORKFLOWS]
    for module in modules:  # as on a machine that never wrote them
        Path(importlib.util.cache_from_source(module.__file__ or "")).unlink(missing_ok=True)
    cache_bytecode(modules)
    compiled = len(compiles)

    for module in modules:
        spec = importlib.util.find_spec(module.__name__)
        assert spec is not None
        assert spec.loader is not None
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert len(compiles) == compiled
