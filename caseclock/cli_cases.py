"""``caseclock api``, ``cases``, ``escalations`` and ``tokens``: the API's verbs at a terminal.

The commands talk to Temporal and the read model directly, through the same
``caseclock.casework`` path as the HTTP API: the core checks an event before anything is
started or recorded, and every change and every read of a case is audited, with
``cli:<login>`` as the actor. Settings come from ``CASECLOCK_...`` variables, as for
the worker.
"""

import asyncio
import getpass
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from temporalio.client import Client

from caseclock.calendar import LONDON
from caseclock.casework import (
    CaseConflictError,
    Casework,
    UnknownDefinitionError,
)
from caseclock.codec import data_converter
from caseclock.core.events import CaseEvent, EventRejectedError
from caseclock.db import UnknownCaseError, UnknownEscalationError
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.oversight import Oversight
from caseclock.db.read_model import ReadModel
from caseclock.db.tokens import TokenStore, UnknownTokenError
from caseclock.definition.loader import DefinitionError, load_definitions
from caseclock.definition.schema import Definition
from caseclock.logging import configure_logging
from caseclock.settings import Settings
from workflows.case_types import Allocation

commands = typer.Typer(no_args_is_help=True)
cases_app = typer.Typer(help="Start a case, record an event on it, show it.", no_args_is_help=True)
escalations_app = typer.Typer(
    help="List escalations (most urgent first), or acknowledge one with 'ack'.",
    invoke_without_command=True,
)
tokens_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
commands.add_typer(cases_app, name="cases")
commands.add_typer(escalations_app, name="escalations")
commands.add_typer(tokens_app, name="tokens")

DefinitionsOption = Annotated[
    Path, typer.Option("--definitions", "-d", help="Folder of definition files (*.yaml).")
]
RecordedBy = Annotated[
    str, typer.Option("--recorded-by", help="Staff code of who recorded the event.")
]
DEFAULT_DEFINITIONS = Path("definitions")


def _actor() -> str:
    """The audit actor of this command: ``cli:`` and the operator's login."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        login = "unknown"
    return f"cli:{login}"[:64]


def _definitions(folder: Path) -> dict[str, Definition]:
    try:
        return load_definitions(folder)
    except DefinitionError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(1) from error


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(1)


@asynccontextmanager
async def _casework(
    settings: Settings, definitions: dict[str, Definition] | None = None, temporal: bool = True
) -> AsyncIterator[Casework]:
    """Casework over the configured read model and, when needed, Temporal."""
    engine, sessions = create_engine_and_sessions(settings.database)
    try:
        client = (
            await Client.connect(
                settings.temporal.address,
                namespace=settings.temporal.namespace,
                data_converter=data_converter(settings.encryption),
            )
            if temporal
            else None
        )
        yield Casework(
            client,
            settings.temporal.task_queue,
            ReadModel(sessions),
            Oversight(sessions),
            definitions or {},
        )
    finally:
        await engine.dispose()


def _local(instant: datetime) -> str:
    return instant.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


def _print_rejection(error: EventRejectedError) -> None:
    typer.echo(f"refused, nothing changed: {error.event_type}", err=True)
    for rejection in error.rejections:
        typer.echo(f"  {rejection.field or '(event)'}: {rejection.reason}", err=True)


# caseclock api -------------------------------------------------------------------------


@commands.command()
def api(definitions: DefinitionsOption = DEFAULT_DEFINITIONS) -> None:
    """Serve the HTTP API on CASECLOCK_API__HOST:PORT (default 127.0.0.1:8000).

    Migrates the read model first. Every route but /api/v1/health and /api/v1/ready needs
    a bearer credential: issue the first API token with 'caseclock tokens create', or set
    CASECLOCK_AUTH__BOOTSTRAP_ADMIN_TOKEN.
    """
    from caseclock.api.main import serve  # noqa: PLC0415 (keeps --help fast)

    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings, definitions))


# caseclock cases -----------------------------------------------------------------------


@cases_app.command("start")
def start_case(
    case_ref: Annotated[str, typer.Argument(help="The case reference (a code, never a name).")],
    team: Annotated[str, typer.Option(help="Team code of the team holding the case.")],
    recorded_by: RecordedBy,
    definition: Annotated[
        str | None,
        typer.Option(help="Definition id@version (default: the only one in the folder)."),
    ] = None,
    worker: Annotated[str | None, typer.Option(help="Staff code of the allocated worker.")] = None,
    received: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Date the referral was received (default today)."),
    ] = None,
    event_id: Annotated[
        str | None, typer.Option(help="Idempotency key of the referral (default <case_ref>-r).")
    ] = None,
    event_type: Annotated[str, typer.Option("--type", help="The opening event's type.")] = (
        "referral_received"
    ),
    definitions: DefinitionsOption = DEFAULT_DEFINITIONS,
) -> None:
    """Start a case from its referral; running it again with the same referral changes nothing."""
    loaded = _definitions(definitions)
    if definition is None:
        if len(loaded) != 1:
            raise _fail(f"name a definition with --definition: {', '.join(sorted(loaded))}")
        definition = next(iter(loaded))
    now = datetime.now(UTC)
    try:
        allocation = Allocation(team=team, worker=worker)
        referral = CaseEvent(
            event_id=event_id or f"{case_ref}-r".replace("/", "-"),
            type=event_type,
            effective_date=received.date() if received else now.astimezone(LONDON).date(),
            recorded_at=now,
            recorded_by=recorded_by,
        )
    except ValueError as error:
        raise _fail(str(error)) from error

    async def run() -> None:
        settings = Settings()
        async with _casework(settings, loaded) as work:
            try:
                result = await work.start(_actor(), case_ref, definition, allocation, referral)
            except (UnknownDefinitionError, CaseConflictError) as error:
                raise _fail(str(error)) from error
            except EventRejectedError as error:
                _print_rejection(error)
                raise typer.Exit(1) from error
        state = "started" if result.started else "already open with this referral"
        typer.echo(f"{case_ref}: {state}")

    asyncio.run(run())


def _field(value: str) -> tuple[str, int | str]:
    name, sep, raw = value.partition("=")
    if not sep or not name:
        raise typer.BadParameter(f"{value!r}: write a field as name=value")
    return name, int(raw) if raw.lstrip("-").isdigit() else raw


@cases_app.command("event")
def record(
    case_ref: Annotated[str, typer.Argument(help="The case reference.")],
    event_type: Annotated[str, typer.Argument(help="The event type, e.g. referral_decision.")],
    event_id: Annotated[str, typer.Option(help="Idempotency key: resending it changes nothing.")],
    recorded_by: RecordedBy,
    on: Annotated[
        datetime | None,
        typer.Option("--date", formats=["%Y-%m-%d"], help="When it happened (default today)."),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(help="When it happened, with an offset (clocks counted in hours)."),
    ] = None,
    outcome: Annotated[str | None, typer.Option(help="The event's outcome.")] = None,
    fields: Annotated[
        list[str] | None, typer.Option("--field", help="A field as name=value (repeatable).")
    ] = None,
) -> None:
    """Record an event on a case; the core checks it first and says why it is refused."""
    now = datetime.now(UTC)
    try:
        event = CaseEvent(
            event_id=event_id,
            type=event_type,
            effective_date=on.date() if on else (at or now).astimezone(LONDON).date(),
            effective_at=at,
            recorded_at=now,
            recorded_by=recorded_by,
            outcome=outcome,
            data=dict(_field(value) for value in fields or []),
        )
    except ValueError as error:
        raise _fail(str(error)) from error

    async def run() -> None:
        async with _casework(Settings()) as work:
            try:
                case = await work.case(case_ref)
                result = await work.record(_actor(), case, event)
            except (UnknownCaseError, CaseConflictError) as error:
                raise _fail(str(error)) from error
            except EventRejectedError as error:
                _print_rejection(error)
                raise typer.Exit(1) from error
        note = " (already recorded: nothing changed)" if result.duplicate else ""
        stages = ", ".join(f"{track}={stage}" for track, stage in result.stages.items())
        typer.echo(f"{case_ref}: {event.type} {event.event_id}{note}; stages {stages}")

    asyncio.run(run())


@cases_app.command("show")
def show(case_ref: Annotated[str, typer.Argument(help="The case reference.")]) -> None:
    """Show a case: stages, events, clocks (each deadline explained), escalations, oversight."""

    async def run() -> None:
        async with _casework(Settings(), temporal=False) as work:
            try:
                case = await work.case(case_ref)
            except UnknownCaseError as error:
                raise _fail(str(error)) from error
            record = await work.read(_actor(), case)
        closed = f", closed {record.case.closed_on}" if record.case.closed_on else ""
        typer.echo(
            f"{case.case_ref}: {case.definition_id}@{case.definition_version}, team {case.team}, "
            f"worker {case.allocated_worker or '-'}, opened {case.opened_on}{closed}"
        )
        typer.echo("stages: " + ", ".join(f"{k}={v}" for k, v in case.current_stages.items()))
        typer.echo("events:")
        for event in record.events:
            outcome = f" -> {event.outcome}" if event.outcome else ""
            typer.echo(f"  {event.effective_date} {event.type}{outcome} ({event.event_id})")
        for title, clocks in (("open clocks", record.open_clocks), ("met", record.met_clocks)):
            typer.echo(f"{title}:")
            for clock in clocks:
                typer.echo(f"  {clock.clock_id} #{clock.occurrence} due {_local(clock.due_at)}")
                typer.echo(f"      {clock.explanation}")
        typer.echo("escalations:")
        for row in record.escalations:
            typer.echo(f"  {row.key} {row.level_name} ({row.state.value})")
            if row.acknowledged_at:
                typer.echo(
                    f"      acknowledged by {row.acknowledged_by} at "
                    f"{_local(row.acknowledged_at)}: {row.acknowledgement_note}"
                )

    asyncio.run(run())


# caseclock escalations -----------------------------------------------------------------


@escalations_app.callback()
def escalations(
    ctx: typer.Context,
    team: Annotated[str | None, typer.Option(help="Only this team's cases.")] = None,
    open_only: Annotated[bool, typer.Option("--open/--all", help="Only unacknowledged.")] = True,
) -> None:
    """List escalations from the read model, most urgent first; 'ack' acknowledges one."""
    if ctx.invoked_subcommand is not None:
        return
    from caseclock.cli_read import print_escalations  # noqa: PLC0415

    asyncio.run(print_escalations(Settings(), team, open_only))


@escalations_app.command("ack")
def acknowledge(
    key: Annotated[str, typer.Argument(help="The escalation key (see 'caseclock escalations').")],
    note: Annotated[str, typer.Option(help="What was done about it (management oversight).")],
    staff: Annotated[str, typer.Option("--as", help="Staff code of the manager acknowledging.")],
) -> None:
    """Acknowledge an escalation with a note; it is shown on the case as management oversight."""

    async def run() -> None:
        async with _casework(Settings(), temporal=False) as work:
            try:
                escalation = await work.escalation(key)
            except UnknownEscalationError as error:
                raise _fail(str(error)) from error
            result = await work.acknowledge(_actor(), escalation, staff, note)
        if result.already_acknowledged:
            typer.echo(f"{key}: already acknowledged by {result.acknowledged_by}; kept")
        else:
            typer.echo(f"{key}: acknowledged by {staff}")

    asyncio.run(run())


# caseclock tokens ----------------------------------------------------------------------


@asynccontextmanager
async def _tokens() -> AsyncIterator[tuple[TokenStore, ReadModel]]:
    engine, sessions = create_engine_and_sessions(Settings().database)
    try:
        yield TokenStore(sessions), ReadModel(sessions)
    finally:
        await engine.dispose()


@tokens_app.command("create")
def create_token(
    role: Annotated[str, typer.Option(help="integration, practitioner, manager, leader or admin.")],
    label: Annotated[str, typer.Option(help="What the token is for, e.g. the case system.")],
    staff: Annotated[
        str | None, typer.Option(help="Staff code (required for manager and practitioner).")
    ] = None,
) -> None:
    """Issue an API token and print it once: only its hash is kept."""
    from caseclock.api.auth import Role  # noqa: PLC0415

    if role not in {r.value for r in Role}:
        raise _fail(f"unknown role {role!r}; roles: {', '.join(Role)}")
    if role in {Role.MANAGER, Role.PRACTITIONER} and staff is None:
        raise _fail(f"a {role} token needs --staff: its scope comes from the directory")

    async def run() -> None:
        async with _tokens() as (tokens, read_model):
            issued = await tokens.issue(role, label, staff, _actor())
            await read_model.write_audit(
                _actor(), "token.create", None, {"token_id": issued.view.id, "role": role}
            )
        typer.echo(issued.token)
        typer.echo(
            f"token {issued.view.id} ({role}) issued; it is shown only now: store it safely",
            err=True,
        )

    asyncio.run(run())


@tokens_app.command("list")
def list_tokens() -> None:
    """List API tokens: ids, roles, labels and last use, never the secrets."""

    async def run() -> None:
        async with _tokens() as (tokens, _):
            rows = await tokens.list_tokens()
        for row in rows:
            state = f"revoked {_local(row.revoked_at)}" if row.revoked_at else "active"
            used = _local(row.last_used_at) if row.last_used_at else "never"
            staff = f" staff {row.staff_code}" if row.staff_code else ""
            typer.echo(f"{row.id} {row.role:<12} {state:<24} used {used}{staff}  {row.label}")
        typer.echo(f"{len(rows)} token(s)")

    asyncio.run(run())


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke an API token: it is refused from now on."""

    async def run() -> None:
        async with _tokens() as (tokens, read_model):
            try:
                view = await tokens.revoke(token_id, _actor())
            except UnknownTokenError as error:
                raise _fail(str(error)) from error
            await read_model.write_audit(_actor(), "token.revoke", None, {"token_id": token_id})
        typer.echo(f"{view.id} revoked at {_local(view.revoked_at or datetime.now(UTC))}")

    asyncio.run(run())
