"""Console views say what to do when there is no read model yet, instead of a SQL error."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from caseclock.cli import app


@pytest.mark.parametrize("args", [["escalations"], ["inbox", "TM-AE"], ["case", "DEMO-0001"]])
def test_read_commands_without_a_read_model_say_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("CASECLOCK_DATABASE__URL", f"sqlite+aiosqlite:///{tmp_path}/none.db")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "No read model at" in result.output
    assert "start the engine first" in result.output
