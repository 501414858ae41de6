"""Definition validation: a corpus of invalid files, each with the exact problems expected.

Every problem names the file, the field (a dotted path) and what is wrong; a file with
several problems reports all of them. The real definitions folder validates clean, and
``caseclock definitions check`` exits 0 on the real folders and 1 on a bad one.
"""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from caseclock.cli_definitions import definitions_app
from caseclock.definition.loader import DefinitionError, load_definition, load_definitions

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
SCENARIOS = ROOT / "scenarios"
CORPUS = Path(__file__).resolve().parent / "data" / "invalid_definitions"

UNKNOWN_KEY = "unknown key (misspelt, or not part of schema version 1)"

# File -> the problems expected, as "field: message", in the order they are reported.
EXPECTED = {
    "unknown-key.yaml": [f"clocks.visits.recuring: {UNKNOWN_KEY}"],
    "missing-source.yaml": ["clocks.visits.source: Field required"],
    "unknown-stage-in-event.yaml": ["events.visit.when.main: unknown stage 'opne' in track 'main'"],
    "unknown-event-in-starts-on.yaml": ["clocks.visits.starts_on[0]: unknown event 'openned'"],
    "unknown-outcome.yaml": [
        "clocks.visits.met_by[1]: event 'decided' has no outcome 'closed' (outcomes: close, keep)"
    ],
    "unknown-role-in-ladder.yaml": [
        "ladders.standard.steps[1].notify[0]: unknown role 'team_manger'"
    ],
    "ladder-out-of-order.yaml": [
        "ladders.standard.steps[1].offset: steps must be in firing order, each later"
    ],
    "recurring-without-met-by.yaml": [
        "clocks.visits.recurring: a recurring clock needs met_by events to recur on"
    ],
    "extension-field-not-integer.yaml": [
        "clocks.visits.extended_by.field: field 'reason' must be a required integer"
    ],
    "duplicate-key.yaml": ["(file): not valid YAML: duplicate key 'visit' (line 19, column 3)"],
    "schema-version-from-the-future.yaml": [
        "schema_version: version 2 is newer than this engine understands (1); upgrade Caseclock"
    ],
    "several-problems.yaml": [
        # Shape problems (pydantic) first, then cross-references, each in file order.
        "clocks.visits.what_to_do: Field required",
        "clocks.visits.deadline.amount: Input should be greater than or equal to 1",
        "clocks.visits.deadline.unit: Input should be 'hours', 'days', 'working_days', "
        "'weeks' or 'months'",
        f"clocks.visits.owner: {UNKNOWN_KEY}",
        "tracks.main.initial: unknown stage 'opened'",
        "events.visit.when.legal: unknown track 'legal'",
        "clocks.visits.ladder: unknown ladder 'standrad'",
        "ladders.standard.steps[1].notify[0]: unknown role 'team_manager'",
    ],
}


def test_every_corpus_file_has_expected_problems() -> None:
    assert sorted(path.name for path in CORPUS.glob("*.yaml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_definition_reports_file_field_and_message(name: str) -> None:
    path = CORPUS / name
    with pytest.raises(DefinitionError) as caught:
        load_definition(path)
    assert caught.value.source == str(path)
    assert [str(problem) for problem in caught.value.problems] == EXPECTED[name]
    assert str(caught.value).splitlines()[0] == f"{path}: {len(EXPECTED[name])} problem(s)"


def test_a_folder_reports_every_problem_of_every_file() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definitions(CORPUS)
    expected = [
        f"{CORPUS / name}: {problem}" for name in sorted(EXPECTED) for problem in EXPECTED[name]
    ]
    assert [str(problem) for problem in caught.value.problems] == expected


def test_real_definitions_validate_clean() -> None:
    definitions = load_definitions(DEFINITIONS)
    assert sorted(definitions) == ["child-protection@2026.1"]


def test_check_passes_on_the_real_folders() -> None:
    result = CliRunner().invoke(
        definitions_app, ["check", "--definitions", str(DEFINITIONS), "--scenarios", str(SCENARIOS)]
    )
    assert result.exit_code == 0, result.output
    assert "OK    child-protection@2026.1" in result.output
    assert "0 failed, 0 could not run" in result.output


def test_check_fails_on_a_bad_definitions_folder_with_every_problem() -> None:
    result = CliRunner().invoke(
        definitions_app, ["check", "--definitions", str(CORPUS), "--scenarios", str(SCENARIOS)]
    )
    assert result.exit_code == 1
    for name, problems in EXPECTED.items():
        for problem in problems:
            assert f"{CORPUS / name}: {problem}" in result.output
    assert "Scenarios not run: fix the definitions first." in result.output


def test_validate_fails_on_the_corpus_and_passes_on_the_real_folder() -> None:
    bad = CliRunner().invoke(definitions_app, ["validate", str(CORPUS)])
    good = CliRunner().invoke(definitions_app, ["validate", str(DEFINITIONS)])
    assert bad.exit_code == 1
    assert f"{CORPUS / 'unknown-key.yaml'}: clocks.visits.recuring: {UNKNOWN_KEY}" in bad.output
    assert good.exit_code == 0, good.output


def test_validate_refuses_a_missing_or_empty_folder(tmp_path: Path) -> None:
    missing = CliRunner().invoke(definitions_app, ["validate", str(tmp_path / "nope")])
    empty = CliRunner().invoke(definitions_app, ["validate", str(tmp_path)])
    assert (missing.exit_code, empty.exit_code) == (1, 1)
    assert "no such folder" in missing.output
    assert "no definition files" in empty.output


def _tiny(tmp_path: Path, old: str, new: str) -> Path:
    text = (CORPUS / "unknown-key.yaml").read_text(encoding="utf-8")
    text = text.replace("recuring: true", "recurring: true")
    assert old in text
    path = tmp_path / "tiny.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_the_corpus_base_is_valid_once_its_problem_is_fixed(tmp_path: Path) -> None:
    assert load_definition(_tiny(tmp_path, "Local policy", "Local policy")).id == "tiny"


def test_an_impossible_date_is_text_not_a_crash(tmp_path: Path) -> None:
    # Dates are not parsed implicitly (caseclock.yaml_files): a note is text, whatever it
    # looks like, and the loader cannot crash on an impossible date.
    path = _tiny(
        tmp_path, "    source: Local policy\n", "    source: Local policy\n    note: 2025-02-30\n"
    )
    definition = load_definition(path)
    assert [clock.note for clock in definition.clocks.values()] == ["2025-02-30"]


def test_an_outcome_named_no_is_a_string(tmp_path: Path) -> None:
    path = _tiny(
        tmp_path,
        "outcomes: {close: {main: closed}, keep: {}}",
        "outcomes: {yes: {main: closed}, no: {}}",
    )
    assert sorted(load_definition(path).events["decided"].outcomes) == ["no", "yes"]
