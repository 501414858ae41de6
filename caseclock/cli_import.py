"""``caseclock import`` and ``caseclock export``: load an existing caseload, export the read model.

``import run`` reads Annex A lists (CSV), shows the dry run, and unless ``--dry-run`` opens
the cases on the Temporal server in the settings. ``import template`` prints a list's
accepted header. ``export escalations|clocks --csv`` writes the read model as CSV.
"""

import asyncio
import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from caseclock.settings import Settings

if TYPE_CHECKING:
    from caseclock.definition.schema import Definition
    from caseclock.importer import ImportPlan

# The importer, Temporal and the database are imported inside the commands, so that every
# other ``caseclock`` command (and --help) starts without them.

io_app = typer.Typer()
import_app = typer.Typer(
    help="Import an existing caseload from Ofsted ILACS Annex A lists 3 to 9 (CSV). "
    "See docs/IMPORT.md for the columns read and how each list maps to clocks.",
    no_args_is_help=True,
)
export_app = typer.Typer(
    help="Export the read model (escalations, clocks) as CSV.", no_args_is_help=True
)
io_app.add_typer(import_app, name="import")
io_app.add_typer(export_app, name="export")

DEFAULT_DEFINITION = "child-protection@2026.1"
# Below this many cases the work is instant and a progress bar is only noise.
PROGRESS_FROM = 50


@contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        yield bar


@import_app.command(
    "run",
    help="Read Annex A lists, print the dry run (cases by stage, clocks overdue and "
    "escalated, every rejected row with file:line and reason) and, unless --dry-run, open "
    "the cases. Importing the same files again changes nothing. Exits 1 if any row was "
    "rejected or any case failed to open.",
)
def run(
    files: Annotated[list[Path], typer.Argument(help="CSV files of Annex A lists 3 to 9.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report; open nothing.")] = False,
    definition: Annotated[
        str, typer.Option(help="Definition the cases run, as id@version.")
    ] = DEFAULT_DEFINITION,
    definitions: Annotated[
        Path, typer.Option("--definitions", "-d", help="Folder of definition files.")
    ] = Path("definitions"),
    today: Annotated[
        str | None,
        typer.Option(help="Dry run as at this date (YYYY-MM-DD) instead of today."),
    ] = None,
    cases: Annotated[bool, typer.Option("--cases", help="List every case and clock.")] = False,
    notes: Annotated[
        bool, typer.Option("--notes", help="Also show how each case was translated.")
    ] = False,
) -> None:
    """Import (or dry-run) Annex A lists."""
    from caseclock.calendar import local_date  # noqa: PLC0415
    from caseclock.importer import (  # noqa: PLC0415
        UnsuitableDefinitionError,
        plan_import,
        plan_report,
    )

    if today is not None and not dry_run:
        typer.echo("--today is only for --dry-run: cases open as at now", err=True)
        raise typer.Exit(2)
    chosen = _definition(definitions, definition)
    now = datetime.now(UTC)
    as_of = date.fromisoformat(today) if today else local_date(now)
    with _progress("Planning", enabled=sys.stderr.isatty()) as bar:
        task = bar.add_task("plan", total=None) if bar else None

        def planned(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total)

        try:
            plan = plan_import(files, chosen, as_of, progress=planned)
        except UnsuitableDefinitionError as error:
            typer.echo(str(error), err=True)
            raise typer.Exit(2) from error
    typer.echo(plan_report(plan, show_cases=cases, show_notes=notes))
    failed = False
    if not dry_run:
        failed = asyncio.run(_apply(plan, now))
    if plan.rejected_rows or failed:
        raise typer.Exit(1)


async def _apply(plan: "ImportPlan", now: datetime) -> bool:
    """Open the plan's cases; True if any failed."""
    from temporalio.client import Client  # noqa: PLC0415 (keeps --help and dry runs fast)

    from caseclock.codec import data_converter  # noqa: PLC0415
    from caseclock.importer import apply_import, result_report  # noqa: PLC0415

    settings = Settings()
    client = await Client.connect(
        settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=data_converter(settings.encryption),
    )
    with _progress("Opening cases", enabled=len(plan.cases) >= PROGRESS_FROM) as bar:
        task = bar.add_task("apply", total=len(plan.cases)) if bar else None

        def applied(done: int, total: int) -> None:
            if bar is not None and task is not None:
                bar.update(task, completed=done, total=total)

        result = await apply_import(
            plan, client, settings.temporal.task_queue, now, progress=applied
        )
    typer.echo(result_report(result))
    return result.failed > 0


def _definition(folder: Path, key: str) -> "Definition":
    from caseclock.definition.loader import DefinitionError, load_definitions  # noqa: PLC0415

    try:
        found = load_definitions(folder)
    except DefinitionError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    if key not in found:
        known = ", ".join(sorted(found)) or "none"
        typer.echo(f"no definition {key!r} in {folder} (found: {known})", err=True)
        raise typer.Exit(2)
    return found[key]


@import_app.command(
    "template",
    help="Print the header a list is read with (Annex A headings; aliases are accepted too). "
    "LIST is 3 to 9.",
)
def template(
    list_number: Annotated[str, typer.Argument(metavar="LIST", help="Annex A list, 3 to 9.")],
    explain: Annotated[
        bool, typer.Option("--explain", help="Also say what each column is used for.")
    ] = False,
) -> None:
    """Print a list's accepted header."""
    from caseclock.importer.columns import LISTS, parse_list_number  # noqa: PLC0415

    try:
        number = parse_list_number(list_number)
    except ValueError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    spec = LISTS[number]
    csv.writer(sys.stdout, lineterminator="\n").writerow(spec.header())
    if explain:
        typer.echo(f"# {spec.title}: starts {spec.starts}")
        for column in spec.columns:
            need = "required" if column.required else "optional"
            aliases = f" (also: {', '.join(column.aliases)})" if column.aliases else ""
            typer.echo(f"# {column.heading} [{need}]{aliases}: {column.meaning}")


CsvFlag = Annotated[bool, typer.Option("--csv", help="Write CSV (the only format for now).")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="File to write.")]
Team = Annotated[str | None, typer.Option(help="Only this team's cases.")]


@export_app.command("escalations", help="Escalations from the read model, oldest first.")
def export_escalations(
    csv_format: CsvFlag = True,
    output: Output = None,
    team: Team = None,
    open_only: Annotated[
        bool, typer.Option("--open/--all", help="Only unacknowledged escalations.")
    ] = True,
) -> None:
    """Write escalations as CSV."""
    count = asyncio.run(_export("escalations", output, team, open_only=open_only))
    typer.echo(f"{count} escalation(s) exported", err=True)


@export_app.command("clocks", help="Clock occurrences from the read model, soonest due first.")
def export_clocks(
    csv_format: CsvFlag = True,
    output: Output = None,
    team: Team = None,
    status: Annotated[
        str | None, typer.Option(help="Only this status: running, met, met_late, cancelled.")
    ] = None,
) -> None:
    """Write clocks as CSV."""
    count = asyncio.run(_export("clocks", output, team, status=status))
    typer.echo(f"{count} clock(s) exported", err=True)


async def _export(
    what: str,
    output: Path | None,
    team: str | None,
    open_only: bool = True,
    status: str | None = None,
) -> int:
    from caseclock.db.engine import create_engine_and_sessions  # noqa: PLC0415
    from caseclock.db.read_model import ReadModel  # noqa: PLC0415
    from caseclock.exports import (  # noqa: PLC0415
        list_all_clocks,
        write_clocks_csv,
        write_escalations_csv,
    )

    engine, sessions = create_engine_and_sessions(Settings().database)
    try:
        out = sys.stdout if output is None else output.open("w", newline="", encoding="utf-8")
        try:
            if what == "escalations":
                rows = await ReadModel(sessions).list_escalations(team=team, open_only=open_only)
                return write_escalations_csv(rows, out)
            return write_clocks_csv(await list_all_clocks(sessions, team, status), out)
        finally:
            if output is not None:
                out.close()
    finally:
        await engine.dispose()
