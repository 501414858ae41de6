"""The ``caseclock`` command: operators and developers use the same verbs as the API."""

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from caseclock.cli_cases import commands as cli_commands
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
def inbox(staff: Annotated[str, typer.Argument(help="Staff code, e.g. TM-AE.")]) -> None:
    """Show a person's in-app inbox."""
    from caseclock.cli_read import print_inbox  # noqa: PLC0415

    asyncio.run(print_inbox(Settings(), staff))


@app.command()
def case(case_ref: Annotated[str, typer.Argument(help="The case reference.")]) -> None:
    """Show a case's stages and clocks, with why each deadline is what it is."""
    from caseclock.cli_read import print_case  # noqa: PLC0415

    asyncio.run(print_case(Settings(), case_ref))


@app.command()
def screenshots(
    out: Annotated[Path, typer.Option(help="Folder for the PNGs.")] = Path("docs/screenshots"),
    url: Annotated[str | None, typer.Option(help="A running dashboard with the demo data.")] = None,
) -> None:
    """Photograph every dashboard page from the demo data, in headless Chromium."""
    from caseclock.dashboard.screenshots import demo_engine, shoot  # noqa: PLC0415

    if url:
        files = shoot(url.rstrip("/"), out)
    else:
        with tempfile.TemporaryDirectory() as folder, demo_engine(Path(folder)) as base:
            files = shoot(base, out)
    for path in files:
        typer.echo(str(path))


# `cases`, `escalations` (list and ack), `tokens` and `api`: see cli_cases.py.
app.add_typer(cli_commands)


if __name__ == "__main__":
    app()
