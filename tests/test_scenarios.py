"""Scenario files: every file under scenarios/ passes, and the runner reports precisely.

The runner tests use the files under tests/data/scenarios_bad/ (wrong expectations and
malformed files) and small scenarios written inline. Tests marked xfail(strict) show
engine or definition bugs: each states what should happen, and fails until it does.
"""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from caseclock.cli_definitions import definitions_app, mermaid_diagram
from caseclock.definition.loader import DefinitionError, load_definitions
from caseclock.definition.references import Problem
from caseclock.definition.schema import Definition
from caseclock.scenarios import (
    ScenarioEvent,
    ScenarioFileError,
    ScenarioResult,
    load_scenario,
    run_scenario,
    run_scenarios,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
DEFINITIONS = ROOT / "definitions"
BAD = Path(__file__).resolve().parent / "data" / "scenarios_bad"
SCENARIO_FILES = sorted(SCENARIOS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def definitions() -> dict[str, Definition]:
    return load_definitions(DEFINITIONS)


def _run(tmp_path: Path, definitions: dict[str, Definition], text: str) -> ScenarioResult:
    path = tmp_path / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return run_scenario(path, definitions)


@pytest.mark.parametrize(
    "path", SCENARIO_FILES, ids=[str(p.relative_to(SCENARIOS)) for p in SCENARIO_FILES]
)
def test_scenario(path: Path, definitions: dict[str, Definition]) -> None:
    result = run_scenario(path, definitions)
    assert result.passed, result.report()


def test_there_are_child_protection_scenarios() -> None:
    assert len(list((SCENARIOS / "child-protection").glob("*.yaml"))) >= 20


# The runner -------------------------------------------------------------------------


def test_wrong_expectations_are_listed_precisely(definitions: dict[str, Definition]) -> None:
    result = run_scenario(BAD / "wrong-expectations.yaml", definitions)
    assert result.status == "FAIL"
    assert list(result.differences) == [
        "event 5 s47_concluded (on 2021-01-05): accepted, but expected a rejection "
        "containing 'not allowed'",
        "event 6 cin_plan_reviewed (on 2021-01-06): rejected: cin_plan_reviewed rejected: "
        "type: cin_plan_reviewed is not allowed while Child's path is at 'conference'; "
        "it needs one of: cin_plan",
        "missing alert: 2021-01-14 icpc overdue",
        "alert 2021-01-19 icpc service_manager: notify expected [director], "
        "got [team_manager, service_manager]",
        "unexpected alert: 2021-01-15 icpc overdue (occurrence 1, covers overdue, "
        "to social_worker, team_manager, at 2021-01-15T00:00:00+00:00)",
        "stage main: expected conference, got cp_plan",
        "clock icpc: expected met, got met_late",
        "due icpc: expected 2021-01-15, got 2021-01-14",
    ]


def test_a_known_issue_that_stops_happening_fails(definitions: dict[str, Definition]) -> None:
    result = run_scenario(BAD / "known-issue-fixed.yaml", definitions)
    assert list(result.differences) == [
        "known issue no longer happens (remove it from known_issue if fixed): "
        "2026-03-28 police_protection due_soon"
    ]


def test_a_malformed_file_is_rejected_with_file_and_fields(
    definitions: dict[str, Definition],
) -> None:
    path = BAD / "malformed-shape.yaml"
    result = run_scenario(path, definitions)
    assert result.status == "ERROR"
    assert [str(problem) for problem in result.problems] == [
        "events[0]: give exactly one of 'on' (a date) or 'at' (a time with zone)",
        "events[1].recorded: unknown key (misspelt, or not part of the scenario format)",
        "events[2].on: Input should be a valid date or datetime, day value is outside "
        "expected range",
        "events[3].at: Input should have timezone info",
        "expect.alerts[0].level: Field required",
        "expect.clocks.referral_decision: Input should be 'running', 'met', 'met_late', "
        "'cancelled' or 'not_started'",
        "calender: unknown key (misspelt, or not part of the scenario format)",
    ]
    assert f"      {path}: calender: unknown key" in result.report()


def test_load_scenario_raises_with_the_file_named() -> None:
    path = BAD / "malformed-yaml.yaml"
    with pytest.raises(ScenarioFileError) as caught:
        load_scenario(path)
    assert caught.value.problems == [
        Problem("(file)", "not valid YAML: duplicate key 'scenario' (line 3, column 1)")
    ]
    assert str(caught.value).startswith(f"{path}: 1 problem(s)")


def test_names_the_definition_does_not_know_are_problems(
    definitions: dict[str, Definition],
) -> None:
    result = run_scenario(BAD / "malformed-names.yaml", definitions)
    assert [str(problem) for problem in result.problems] == [
        "events[0].type: unknown event 'referral_recieved'",
        "events[2]: recorded before the event above it; list events in order",
        "expect.stages.main: unknown stage 'plan'",
        "expect.stages.legals: unknown track 'legals'",
        "expect.clocks.ipcc: unknown clock 'ipcc'",
        "expect.due.assesment: unknown clock 'assesment'",
        "expect.alerts[1].on: list alerts in the order they are sent",
        "expect.alerts[1]: standard ladder has no rung 'late'",
        "expect.alerts[1].notify: unknown role 'chief_executive'",
        "expect.alerts[2].clock: unknown clock 'icpc_review'",
        "calendar.local_closures[1].day: listed twice",
    ]


def test_an_unknown_definition_is_a_problem(definitions: dict[str, Definition]) -> None:
    result = run_scenario(BAD / "unknown-definition.yaml", definitions)
    assert [str(problem) for problem in result.problems] == [
        "definition: no definition looked-after version 2026.1 (known: child-protection@2026.1)"
    ]


def test_run_scenarios_runs_every_file_in_a_folder() -> None:
    results = run_scenarios(BAD, DEFINITIONS)
    assert [(result.path.name, result.status) for result in results] == [
        ("known-issue-fixed.yaml", "FAIL"),
        ("malformed-names.yaml", "ERROR"),
        ("malformed-shape.yaml", "ERROR"),
        ("malformed-yaml.yaml", "ERROR"),
        ("unknown-definition.yaml", "ERROR"),
        ("wrong-expectations.yaml", "FAIL"),
    ]


def test_run_scenarios_refuses_invalid_definitions() -> None:
    with pytest.raises(DefinitionError):
        run_scenarios(BAD, Path(__file__).parent / "data" / "invalid_definitions")


EPO = """
scenario: EPO due soon
definition: child-protection
events:
  - {on: 2025-06-02, type: epo_made}
expect:
  until: UNTIL
  alerts: ALERTS
"""


def test_until_counts_alerts_sent_on_or_before_it(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    # EPO due 2 Jun + 8 days - 1 = 9 Jun; due_soon at the end of 7 Jun = 00:00 on 8 Jun.
    before = EPO.replace("UNTIL", "2025-06-07").replace("ALERTS", "[]")
    on_the_day = EPO.replace("UNTIL", "2025-06-08").replace(
        "ALERTS", "[{on: 2025-06-08, clock: emergency_protection_order, level: due_soon}]"
    )
    assert _run(tmp_path, definitions, before).passed
    assert _run(tmp_path, definitions, on_the_day).passed


def test_events_are_recorded_at_nine_in_london() -> None:
    summer = ScenarioEvent.model_validate({"on": "2025-06-02", "type": "x"})
    winter = ScenarioEvent.model_validate(
        {"on": "2025-06-02", "type": "x", "recorded_on": "2025-12-01"}
    )
    timed = ScenarioEvent.model_validate({"at": "2025-06-02T23:30:00+01:00", "type": "x"})
    assert summer.recorded() == datetime(2025, 6, 2, 8, tzinfo=UTC)
    assert winter.recorded() == datetime(2025, 12, 1, 9, tzinfo=UTC)
    assert (timed.effective_date.isoformat(), timed.recorded().hour) == ("2025-06-02", 22)


def test_alerts_sent_the_same_day_may_be_listed_in_any_order(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: First core group and first visit both missed
definition: child-protection
events:
  - {on: 2025-01-06, type: referral_received}
  - {on: 2025-01-06, type: referral_decision, outcome: strategy_discussion}
  - {on: 2025-01-07, type: strategy_discussion_held, outcome: s47}
  - {on: 2025-01-07, type: assessment_completed}
  # Both due 10 WD after Thu 9 Jan: Jan 10, 13-17, 20-23 -> Thu 23 Jan.
  - {on: 2025-01-09, type: icpc_held, outcome: cp_plan}
expect:
  until: 2025-01-22
  alerts:
    # 23 Jan - 2 WD = Tue 21 Jan, sent at 00:00 on 22 Jan.
    - {on: 2025-01-22, clock: cp_visits, level: due_soon}
    - {on: 2025-01-22, clock: first_core_group, level: due_soon}
"""
    result = _run(tmp_path, definitions, text)
    assert result.passed, result.report()
    # Sent in the definition's order of clocks, listed in the other order.
    assert [alert.clock for alert in result.alerts] == ["first_core_group", "cp_visits"]


def test_alerts_must_be_listed_in_date_order(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: Out of order
definition: child-protection
events:
  - {on: 2025-06-02, type: proceedings_issued}
expect:
  until: 2025-06-30
  # CMH due 2 Jun + 17 days = 19 Jun; due_soon at the end of 19 Jun - 3 WD = 16 Jun.
  alerts:
    - {on: 2025-06-20, clock: case_management_hearing, level: overdue}
    - {on: 2025-06-17, clock: case_management_hearing, level: due_soon}
"""
    result = _run(tmp_path, definitions, text)
    assert [str(problem) for problem in result.problems] == [
        "expect.alerts[1].on: list alerts in the order they are sent"
    ]


def test_an_event_beyond_the_calendar_is_a_rejection_not_a_crash(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: Beyond the calendar
definition: child-protection
events:
  - {on: 2045-12-29, type: referral_received}
expect:
  until: 2045-12-31
  alerts: []
"""
    result = _run(tmp_path, definitions, text)
    assert result.status == "FAIL"
    assert result.differences[0].startswith(
        "event 1 referral_received (on 2045-12-29): rejected: referral_received rejected: "
        "effective_date: a deadline it sets cannot be computed with the case's calendar "
        "(2000 to 2045)"
    )


# The command line ---------------------------------------------------------------------


def test_scenarios_command_passes_on_the_real_folders() -> None:
    result = CliRunner().invoke(
        definitions_app, ["scenarios", str(SCENARIOS), "--definitions", str(DEFINITIONS)]
    )
    assert result.exit_code == 0, result.output
    assert f"PASS  {SCENARIOS / 'child-protection' / 'cmh-late.yaml'}" in result.output
    assert f"{len(SCENARIO_FILES)} scenario(s): " in result.output


def test_scenarios_command_fails_with_the_differences() -> None:
    result = CliRunner().invoke(
        definitions_app, ["scenarios", str(BAD), "--definitions", str(DEFINITIONS)]
    )
    assert result.exit_code == 1
    assert f"FAIL  {BAD / 'wrong-expectations.yaml'}: ICPC with wrong expectations" in result.output
    assert "      missing alert: 2021-01-14 icpc overdue" in result.output
    assert (
        f"      {BAD / 'malformed-names.yaml'}: expect.clocks.ipcc: unknown clock" in result.output
    )
    assert "6 scenario(s): 0 passed, 0 passed with a known issue, 2 failed, 4 could not run" in (
        result.output
    )


def test_check_fails_on_a_bad_scenarios_folder() -> None:
    result = CliRunner().invoke(
        definitions_app, ["check", "--definitions", str(DEFINITIONS), "--scenarios", str(BAD)]
    )
    assert result.exit_code == 1
    assert "OK    child-protection@2026.1" in result.output
    assert "missing alert: 2021-01-14 icpc overdue" in result.output


def test_show_lists_clocks_with_deadline_source_and_confidence() -> None:
    result = CliRunner().invoke(
        definitions_app, ["show", "child-protection", "-d", str(DEFINITIONS)]
    )
    assert result.exit_code == 0, result.output
    assert "    deadline: 26 weeks from start (start_day_is_day_1); extended by " in result.output
    assert "    confidence: V" in result.output
    assert "    source: Children Act 1989 s46(6)" in result.output


def test_show_refuses_an_unknown_id() -> None:
    result = CliRunner().invoke(definitions_app, ["show", "looked-after", "-d", str(DEFINITIONS)])
    assert result.exit_code == 1
    assert "no definition 'looked-after'; known: child-protection@2026.1" in result.output


def test_diagram_is_a_mermaid_state_diagram(definitions: dict[str, Definition]) -> None:
    diagram = mermaid_diagram(definitions["child-protection@2026.1"])
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert '    state "Legal" as legal {' in lines
    assert "        [*] --> main__none" in lines
    assert "        main__s47 --> main__cp_plan : icpc_held (cp_plan)" in lines
    # An event that moves a track without naming its stages leaves every other stage.
    assert "        assessment__in_progress --> assessment__none : referral_received" in lines
    cli = CliRunner().invoke(
        definitions_app, ["diagram", "child-protection", "-d", str(DEFINITIONS)]
    )
    assert cli.output.strip() == diagram


# Engine and definition bugs: each test states what should happen ------------------------


def test_due_soon_rung_before_clock_start_is_not_sent(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: Decided and discussed on the day
definition: child-protection
events:
  - {on: 2025-01-06, type: referral_received}
  - {on: 2025-01-06, type: referral_decision, outcome: strategy_discussion}
  - {on: 2025-01-06, type: strategy_discussion_held, outcome: no_s47}
  - {on: 2025-01-06, type: assessment_completed}
expect:
  until: 2025-01-31
  alerts: []
"""
    result = _run(tmp_path, definitions, text)
    assert result.passed, result.report()


def test_closing_a_case_stops_its_transfer_clock(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: Closed while awaiting transfer
definition: child-protection
events:
  - {on: 2025-03-03, type: referral_received}
  - {on: 2025-03-03, type: referral_decision, outcome: assessment}
  - {on: 2025-03-04, type: transfer_requested}
  - {on: 2025-03-05, type: assessment_completed}
  - {on: 2025-03-05, type: case_closed}
expect:
  until: 2025-04-30
  alerts: []
  clocks: {transfer: cancelled}
"""
    result = _run(tmp_path, definitions, text)
    assert result.passed, result.report()


def test_a_plan_ending_closes_the_assessment_clock(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: The child moves away during the assessment
definition: child-protection
events:
  - {on: 2025-03-03, type: referral_received}
  - {on: 2025-03-03, type: referral_decision, outcome: strategy_discussion}
  - {on: 2025-03-04, type: strategy_discussion_held, outcome: s47}
  - {on: 2025-03-06, type: icpc_held, outcome: cp_plan}
  - {on: 2025-03-10, type: cp_plan_ended, outcome: moved_away}
expect:
  until: 2025-06-30
  alerts: []
  clocks: {assessment: cancelled}
"""
    result = _run(tmp_path, definitions, text)
    assert result.passed, result.report()


ANCHORED = """
schema_version: 1
id: anchored
version: "1"
title: A clock measured from an event other than the one that starts it
roles: {worker: Worker}
tracks:
  main:
    title: Main
    initial: idle
    stages: {idle: {title: Idle}, intake: {title: Intake}, open: {title: Open}}
events:
  referral: {title: Referral, then: {main: intake}}
  begin: {title: Work begins, when: {main: [intake]}, then: {main: open}}
clocks:
  work:
    title: Work within 10 working days of the referral
    what_to_do: Do the work.
    starts_on: [begin]
    while_in: {main: [open]}
    deadline: {amount: 10, unit: working_days, from: referral}
    ladder: one
    source: Test
    confidence: [L]
ladders:
  one:
    title: One rung
    steps: [{name: overdue, offset: {amount: 0, unit: working_days}, notify: [worker]}]
"""


def test_a_cancelled_occurrence_keeps_its_deadline(tmp_path: Path) -> None:
    (tmp_path / "definitions").mkdir()
    (tmp_path / "definitions" / "anchored.yaml").write_text(ANCHORED, encoding="utf-8")
    text = """
scenario: A second referral cancels the work clock
definition: anchored
events:
  - {on: 2025-03-03, type: referral}
  - {on: 2025-03-04, type: begin}
  # Moves main to intake, which cancels the work clock.
  - {on: 2025-03-06, type: referral}
expect:
  until: 2025-03-06
  alerts: []
  clocks: {work: cancelled}
  # 10 WD after the referral on 3 Mar: Mar 4-7, 10-14, 17 -> Mon 17 Mar (not 10 WD after
  # the second referral on 6 Mar, 20 Mar).
  due: {work: 2025-03-17}
"""
    result = _run(tmp_path, load_definitions(tmp_path / "definitions"), text)
    assert result.passed, result.report()


def test_an_extended_deadline_is_alerted_when_it_passes(
    tmp_path: Path, definitions: dict[str, Definition]
) -> None:
    text = """
scenario: PLO extended after the 16 weeks had passed
definition: child-protection
events:
  - {on: 2025-01-13, type: letter_before_proceedings}
  - {on: 2025-01-17, type: pre_proceedings_meeting}
  - {on: 2025-02-20, type: pre_proceedings_review}
  - {on: 2025-03-26, type: pre_proceedings_review}
  - {on: 2025-04-29, type: pre_proceedings_review}
  # Decision due 13 Jan + 16 weeks = 5 May; extended on 7 May by 4 weeks to Mon 2 Jun.
  - {on: 2025-05-07, type: pre_proceedings_extended, data: {weeks: 4, reason: other}}
  - {on: 2025-06-03, type: pre_proceedings_review}
expect:
  until: 2025-06-10
  alerts:
    # 5 May - 5 WD: May 2, 1, Apr 30, 29, 28 -> end of 28 Apr.
    - {on: 2025-04-29, clock: pre_proceedings_decision, level: due_soon}
    - {on: 2025-05-06, clock: pre_proceedings_decision, level: overdue}
    # The extended deadline: 2 Jun - 5 WD = May 30, 29, 28, 27, 23 -> end of 23 May;
    # overdue at the end of 2 Jun.
    - {on: 2025-05-24, clock: pre_proceedings_decision, level: due_soon}
    - {on: 2025-06-03, clock: pre_proceedings_decision, level: overdue}
"""
    result = _run(tmp_path, definitions, text)
    assert result.passed, result.report()
