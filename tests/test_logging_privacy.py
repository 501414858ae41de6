"""Logs never carry payloads: exceptions are rendered without frame locals."""

import json
import logging

import pytest
import structlog

from caseclock.logging import configure_logging


def test_json_exception_logs_do_not_include_frame_locals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", json=True)
    about_the_child = "free text about a child"  # a local the traceback must not show
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("failed", length=len(about_the_child))
    line = capsys.readouterr().out.strip().splitlines()[-1]
    frames = json.loads(line)["exception"][0]["frames"]
    assert "boom" in line
    assert about_the_child not in line
    assert all("locals" not in frame for frame in frames)
    logging.getLogger().handlers.clear()
