"""``caseclock definitions``: validate definitions, run scenarios, show and draw a definition."""

from pathlib import Path
from typing import Annotated

import typer

from caseclock.definition.loader import DefinitionError, load_definitions
from caseclock.definition.schema import ClockSpec, Definition
from caseclock.scenarios import ScenarioResult, find_definition, run_scenario

definitions_app = typer.Typer(
    help="Check process definitions and their scenarios; show or draw a definition.",
    no_args_is_help=True,
)

DefinitionsFolder = Annotated[
    Path,
    typer.Option("--definitions", "-d", help="Folder of definition files (*.yaml)."),
]
DEFAULT_DEFINITIONS = Path("definitions")
DEFAULT_SCENARIOS = Path("scenarios")


def _load(folder: Path) -> dict[str, Definition] | None:
    """The folder's definitions, or None after printing every problem of every file."""
    if not folder.is_dir():
        typer.echo(f"{folder}: no such folder", err=True)
        return None
    if not any(folder.glob("*.yaml")):
        typer.echo(f"{folder}: no definition files (*.yaml)", err=True)
        return None
    try:
        return load_definitions(folder)
    except DefinitionError as error:
        for problem in error.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(error.problems)} problem(s) in the definitions in {folder}", err=True)
        return None


def _validate(folder: Path) -> dict[str, Definition] | None:
    definitions = _load(folder)
    if definitions is not None:
        for key, definition in sorted(definitions.items()):
            typer.echo(
                f"OK    {key}: {len(definition.tracks)} tracks, {len(definition.events)} events, "
                f"{len(definition.clocks)} clocks"
            )
        typer.echo(f"{len(definitions)} definition(s) valid in {folder}")
    return definitions


def _run_scenarios(folder: Path, definitions: dict[str, Definition], verbose: bool) -> bool:
    if not folder.is_dir():
        typer.echo(f"{folder}: no such folder", err=True)
        return False
    results: list[ScenarioResult] = []
    for path in sorted(folder.rglob("*.yaml")):
        result = run_scenario(path, definitions)
        results.append(result)
        typer.echo(result.report())
        if verbose:
            typer.echo("\n".join(f"        sent {alert}" for alert in result.alerts))
    counts = dict.fromkeys(("PASS", "KNOWN", "FAIL", "ERROR"), 0)
    for result in results:
        counts[result.status] += 1
    typer.echo(
        f"{len(results)} scenario(s): {counts['PASS']} passed, {counts['KNOWN']} passed with "
        f"a known issue, {counts['FAIL']} failed, {counts['ERROR']} could not run"
    )
    return bool(results) and all(result.passed for result in results)


@definitions_app.command(
    short_help="Validate every definition file, with every problem's file and field.",
    help="Validate every definition file, reporting every problem of every file with its field. "
    "Exits 1 if any file has a problem, or the folder holds no definitions.",
)
def validate(
    folder: Annotated[
        Path, typer.Argument(help="Folder of definition files (*.yaml).")
    ] = DEFAULT_DEFINITIONS,
) -> None:
    """Validate every definition file, reporting every problem with its file and field."""
    if _validate(folder) is None:
        raise typer.Exit(1)


@definitions_app.command(
    short_help="Run every scenario file: PASS, KNOWN, FAIL or ERROR for each.",
    help="Run every scenario file and print PASS, KNOWN, FAIL or ERROR for each. FAIL lists what "
    "differed (missing or unexpected alerts, wrong stages, statuses or due dates, events "
    "wrongly accepted or refused); ERROR lists the file's problems with their fields; KNOWN "
    "passed with the alerts its known_issue names. Exits 1 on any FAIL or ERROR.",
)
def scenarios(
    folder: Annotated[
        Path, typer.Argument(help="Folder of scenario files (*.yaml, searched recursively).")
    ] = DEFAULT_SCENARIOS,
    definitions: DefinitionsFolder = DEFAULT_DEFINITIONS,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list every alert each scenario sent.")
    ] = False,
) -> None:
    """Run every scenario file and print PASS, KNOWN, FAIL or ERROR for each."""
    loaded = _load(definitions)
    if loaded is None or not _run_scenarios(folder, loaded, verbose):
        raise typer.Exit(1)


@definitions_app.command(
    short_help="Validate the definitions, then run the scenarios (the check before a commit).",
    help="Validate the definitions, then run the scenarios: the one check to run before a "
    "commit. Exits 1 if a definition has a problem (the scenarios are then not run) or a "
    "scenario fails.",
)
def check(
    definitions: DefinitionsFolder = DEFAULT_DEFINITIONS,
    scenarios: Annotated[
        Path, typer.Option("--scenarios", "-s", help="Folder of scenario files.")
    ] = DEFAULT_SCENARIOS,
) -> None:
    """Validate the definitions, then run the scenarios: the one check to run before a commit."""
    loaded = _validate(definitions)
    if loaded is None:
        typer.echo("Scenarios not run: fix the definitions first.", err=True)
        raise typer.Exit(1)
    if not _run_scenarios(scenarios, loaded, verbose=False):
        raise typer.Exit(1)


def _find(definitions_folder: Path, definition_id: str) -> Definition:
    loaded = _load(definitions_folder)
    if loaded is None:
        raise typer.Exit(1)
    found = find_definition(loaded, definition_id)
    if found is None:
        typer.echo(f"no definition {definition_id!r}; known: {', '.join(sorted(loaded))}", err=True)
        raise typer.Exit(1)
    return found


def _deadline_text(clock: ClockSpec) -> str:
    deadline = clock.deadline
    terms = [
        f"{term.amount} {term.unit.value} from {term.from_event or 'start'} ({term.counting.value})"
        for term in deadline.terms()
    ]
    text = ("sooner of: " if len(terms) > 1 else "") + "; ".join(terms)
    if deadline.window_opens is not None:
        window = deadline.window_opens
        text += f"; not before {window.amount} {window.unit.value} ({window.counting.value})"
    if clock.extended_by is not None:
        ext = clock.extended_by
        times = f", at most {ext.max_times} time(s)" if ext.max_times else ""
        text += f"; extended by {ext.event} (at most {ext.max_amount} {ext.unit.value}{times})"
    return text


@definitions_app.command()
def show(
    definition_id: Annotated[str, typer.Argument(metavar="ID", help="Definition id.")],
    definitions: DefinitionsFolder = DEFAULT_DEFINITIONS,
) -> None:
    """Show a definition: tracks, events, and clocks with deadline, source and confidence."""
    definition = _find(definitions, definition_id)
    typer.echo(f"{definition.id} {definition.version}: {definition.title}")
    typer.echo("\nTracks")
    for track_id, track in definition.tracks.items():
        typer.echo(f"  {track_id} ({track.title}), starts at {track.initial}")
        typer.echo(f"    stages: {', '.join(track.stages)}")
    typer.echo("\nEvents")
    for event_id, event in definition.events.items():
        when = "; ".join(f"{t} in {', '.join(s)}" for t, s in event.when.items()) or "any time"
        moves = [f"{t} -> {s}" for t, s in event.then.items()] + [
            f"{outcome}: {', '.join(f'{t} -> {s}' for t, s in m.items()) or 'no move'}"
            for outcome, m in event.outcomes.items()
        ]
        typer.echo(f"  {event_id}: {event.title}")
        typer.echo(f"    when {when}; {'; '.join(moves) or 'moves no track'}")
    typer.echo("\nClocks")
    for clock_id, clock in definition.clocks.items():
        recurring = ", recurring" if clock.recurring else ""
        typer.echo(f"  {clock_id}: {clock.title}")
        typer.echo(f"    deadline: {_deadline_text(clock)}{recurring}")
        typer.echo(f"    starts on: {', '.join(str(m) for m in clock.starts_on)}")
        typer.echo(f"    met by: {', '.join(str(m) for m in clock.met_by) or '(nothing)'}")
        typer.echo(f"    ladder: {clock.ladder}")
        typer.echo(f"    source: {clock.source}")
        typer.echo(f"    confidence: {', '.join(c.value for c in clock.confidence)}")


def mermaid_diagram(definition: Definition) -> str:
    """A Mermaid state diagram: one composite state per track, events as transitions.

    An event that moves a track without listing the stages it is allowed in for that track
    is drawn from every other stage of the track.
    """
    lines = ["stateDiagram-v2", f"    %% {definition.id} {definition.version}"]
    for track_id, track in definition.tracks.items():
        lines.append(f'    state "{track.title}" as {track_id} {{')
        for stage_id, stage in track.stages.items():
            lines.append(f'        state "{stage.title}" as {track_id}__{stage_id}')
        lines.append(f"        [*] --> {track_id}__{track.initial}")
        for event_id, event in definition.events.items():
            moves = [(event_id, event.then.get(track_id))] + [
                (f"{event_id} ({outcome})", m.get(track_id))
                for outcome, m in event.outcomes.items()
            ]
            sources = event.when.get(track_id, tuple(track.stages))
            for label, target in moves:
                if target is None:
                    continue
                lines += [
                    f"        {track_id}__{source} --> {track_id}__{target} : {label}"
                    for source in sources
                    if source != target or track_id in event.when
                ]
        lines.append("    }")
    return "\n".join(lines)


@definitions_app.command()
def diagram(
    definition_id: Annotated[str, typer.Argument(metavar="ID", help="Definition id.")],
    definitions: DefinitionsFolder = DEFAULT_DEFINITIONS,
) -> None:
    """Print a Mermaid stateDiagram of a definition's tracks and the events that move them."""
    typer.echo(mermaid_diagram(_find(definitions, definition_id)))
