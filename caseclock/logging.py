"""Logging set-up: structlog configured once at start-up, stdlib logging routed through it.

Call :func:`configure_logging` once, from the entry point (``worker.py``, the API, the CLI),
before anything logs. Modules then log with ``structlog.get_logger(__name__)`` and
key-value events; nothing binds context at module scope, because a logger bound at import
time would carry that context into every process that imports the module.

Temporal's ``workflow.logger`` and ``activity.logger`` are stdlib loggers that put the
workflow or activity info into ``extra``; :class:`structlog.stdlib.ExtraAdder` turns that
into structured keys (``temporal_workflow``, ``temporal_activity``), so the info is not
repeated at the end of each message as well.

Log lines carry case references and codes only, never personal data of a child.
"""

import logging
import sys

import structlog
from structlog.typing import Processor
from temporalio import activity, workflow

# The one handler this module installs on the root logger; replaced, not stacked, when
# configure_logging is called again (tests, an interactive session).
_HANDLER_NAME = "caseclock"


def _shared_processors() -> list[Processor]:
    """Processors applied to structlog events and to stdlib records alike."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def configure_logging(level: str, json: bool | None = None) -> None:
    """Configure structlog and the stdlib root logger for the whole process.

    Args:
        level: Name of the lowest level to emit, for example ``"INFO"`` or ``"debug"``.
        json: Render one JSON object per line when True, a readable console format when
            False. None chooses JSON unless stdout is a terminal.

    Raises:
        ValueError: If ``level`` is not a logging level name.

    """
    numeric_level = logging.getLevelNamesMapping().get(level.upper())
    if numeric_level is None:
        msg = f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL"
        raise ValueError(msg)
    if json is None:
        json = not sys.stdout.isatty()

    shared = _shared_processors()
    renderer: Processor
    if json:
        renderer = structlog.processors.JSONRenderer()
        # Frame locals would put payloads (events, alerts) into logs: never show them.
        shared.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        # Plain tracebacks: rich's would show frame locals.
        renderer = structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(numeric_level)

    # The info travels as structured keys through ExtraAdder; appending it to the message
    # too would only make every line longer.
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
