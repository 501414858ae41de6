"""Read-model views for the console: escalations, a person's inbox, a case's clocks."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

import typer
from sqlalchemy import inspect

from caseclock.calendar import LONDON
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.read_model import ReadModel
from caseclock.settings import Settings


def _local(instant: datetime) -> str:
    """A deadline instant in London time (end of day shows as the next day's 00:00)."""
    return instant.astimezone(LONDON).strftime("%Y-%m-%d %H:%M")


@asynccontextmanager
async def _read_model(settings: Settings) -> AsyncIterator[ReadModel]:
    engine, sessions = create_engine_and_sessions(settings.database)
    try:
        async with engine.connect() as connection:
            migrated = await connection.run_sync(lambda sync: inspect(sync).has_table("cases"))
        if not migrated:
            typer.echo(
                f"No read model at {settings.database.url}: start the engine first "
                "(./run, or the worker, which creates it), or set CASECLOCK_DATABASE__URL.",
                err=True,
            )
            raise typer.Exit(1)
        yield ReadModel(sessions)
    finally:
        await engine.dispose()


async def print_escalations(settings: Settings, team: str | None, open_only: bool) -> None:
    """Escalations, highest level first, then the longest overdue."""
    async with _read_model(settings) as read_model:
        rows = await read_model.list_escalations(team=team, open_only=open_only)
    rows.sort(key=lambda row: (-row.level, row.due_at))
    typer.echo(f"{'case':<12} {'team':<5} {'clock':<28} {'level':<22} {'due by':<17} state")
    for row in rows:
        typer.echo(
            f"{row.case_ref:<12} {row.team:<5} {row.clock_id:<28} "
            f"{row.level} {row.level_name:<20} {_local(row.due_at):<17} "
            f"{row.state.value}{' (acknowledged)' if row.acknowledged_at else ''}"
        )
    typer.echo(f"{len(rows)} escalation(s)")


async def print_inbox(settings: Settings, staff: str) -> None:
    """A person's inbox, newest first."""
    async with _read_model(settings) as read_model:
        items = await read_model.inbox(staff)
    for item in items:
        escalation = item.escalation
        typer.echo(
            f"{escalation.case_ref:<12} {escalation.clock_title} — {escalation.level_name} "
            f"({escalation.state.value}); key {escalation.key}"
        )
    typer.echo(f"{len(items)} item(s) for {staff}")


async def print_case(settings: Settings, case_ref: str) -> None:
    """A case's stages and clocks, with each deadline's explanation."""
    async with _read_model(settings) as read_model:
        case = await read_model.get_case(case_ref)
        clocks = await read_model.list_clocks(case_ref)
    if case is None:
        typer.echo(f"no case {case_ref!r} in the read model", err=True)
        raise typer.Exit(1)
    typer.echo(f"{case.case_ref}: team {case.team}, worker {case.allocated_worker or '-'}")
    typer.echo("stages: " + ", ".join(f"{k}={v}" for k, v in case.current_stages.items()))
    for clock in clocks:
        typer.echo(
            f"- {clock.clock_id} #{clock.occurrence}: {clock.status.value}, due {clock.due_date}"
        )
        typer.echo(f"    {clock.explanation}")
