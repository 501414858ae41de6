"""The ``caseclock`` command: operators and developers use the same verbs as the API."""

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from caseclock.cli_definitions import definitions_app
from caseclock.cli_import import io_app
from caseclock.logging import configure_logging
from caseclock.settings import Settings

app = typer.Typer(
    help="Caseclock: statutory clocks for children's social care.", no_args_is_help=True
)
app.add_typer(definitions_app, name="definitions")
app.add_typer(io_app)  # the `import` and `export` groups

DefinitionsDir = Annotated[Path, typer.Option(help="Folder of definition files.")]


@app.command()
def up(
    definitions: DefinitionsDir = Path("definitions"),
    demo: Annotated[bool, typer.Option(help="Load the demo directory and caseload.")] = True,
) -> None:
    """Start everything on this machine: Temporal dev server, worker and demo data."""
    from caseclock.up import up as run_up  # noqa: PLC0415 (keeps --help fast)

    settings = Settings()
    configure_logging(settings.log_level)
    asyncio.run(run_up(settings, definitions, demo))


@app.command()
def worker() -> None:
    """Run the worker against the Temporal server in the settings."""
    # The worker is its own entry point; run it rather than import it.
    os.execv(sys.executable, [sys.executable, "-m", "worker"])  # noqa: S606


@app.command()
def escalations(
    team: Annotated[str | None, typer.Option(help="Only this team's cases.")] = None,
    open_only: Annotated[bool, typer.Option("--open/--all", help="Only unacknowledged.")] = True,
) -> None:
    """List escalations from the read model, most urgent first."""
    from caseclock.cli_read import print_escalations  # noqa: PLC0415

    asyncio.run(print_escalations(Settings(), team, open_only))


@app.command()
def inbox(staff: Annotated[str, typer.Argument(help="Staff code, e.g. TM-AE.")]) -> None:
    """Show a person's in-app inbox."""
    from caseclock.cli_read import print_inbox  # noqa: PLC0415

    asyncio.run(print_inbox(Settings(), staff))


@app.command()
def case(case_ref: Annotated[str, typer.Argument(help="The case reference.")]) -> None:
    """Show a case's stages and clocks, with why each deadline is what it is."""
    from caseclock.cli_read import print_case  # noqa: PLC0415

    asyncio.run(print_case(Settings(), case_ref))


app.add_typer(__import__("caseclock.cli_cases", fromlist=["*"]).commands)  # see cli_cases.py


if __name__ == "__main__":
    app()
