"""Translating rows into opening events: exact events, synthesised steps, rejections, privacy."""

import hashlib
import random
from datetime import date, timedelta
from pathlib import Path

import pytest

from caseclock.definition.loader import load_definition
from caseclock.definition.schema import Definition
from caseclock.importer import (
    ImportPlan,
    Severity,
    SourceFile,
    UnsuitableDefinitionError,
    plan_import,
    plan_report,
)
from caseclock.importer.chain import IMPORTED_BY

TODAY = date(2026, 11, 20)
DEFINITION_FILE = Path(__file__).parents[1] / "definitions" / "child-protection.yaml"

L3 = "Child Unique ID,Child Name,Date of referral,Referral NFA?,Allocated Team,Allocated Worker"
L4 = (
    "Child Unique ID,Child Name,Continuous Assessment Start Date,"
    "Continuous Assessment Date of Authorisation,Allocated Team,Allocated Worker"
)
L5 = (
    "Child Unique ID,Child Name,Strategy discussion initiating Section 47 Enquiry Start Date,"
    "Was an Initial Child Protection Conference deemed unnecessary?,"
    "Date of Initial Child Protection Conference,"
    "Did the Initial Child Protection Conference Result in a Child Protection Plan,"
    "Allocated Team,Allocated Worker"
)
L6 = (
    "Child Unique ID,Child Name,CIN Start Date,CIN Closure Date,Case Status,"
    "Allocated Team,Allocated Worker"
)
L7 = (
    "Child Unique ID,Child Name,Child Protection Plan Start Date,"
    "Date of the Last Statutory Visit,Date of latest review conference,"
    "Child Protection Plan End Date,Allocated Team,Allocated Worker"
)
L8 = (
    "Child Unique ID,Child Name,Date Started to be Looked After,Placement postcode,"
    "Allocated Team,Allocated Worker"
)
NAME = "Zephyrina Quillfeather"


@pytest.fixture(scope="module")
def definition() -> Definition:
    return load_definition(DEFINITION_FILE)


def plan(definition: Definition, **lists: list[str]) -> ImportPlan:
    """Plan files given as l3=[rows...], l7=[rows...] (rows without the header)."""
    headers = {"l3": L3, "l4": L4, "l5": L5, "l6": L6, "l7": L7, "l8": L8}
    sources = [
        SourceFile(f"{key}.csv", "\n".join([headers[key], *rows]) + "\n")
        for key, rows in lists.items()
    ]
    return plan_import(sources, definition, TODAY)


def events(result: ImportPlan, case_ref: str) -> list[tuple[str, str | None, str]]:
    [case] = [case for case in result.cases if case.case_ref == case_ref]
    return [(e.type, e.outcome, e.effective_date.isoformat()) for e in case.events]


def test_a_plan_from_list_7_alone_synthesises_its_path_on_the_plan_start(
    definition: Definition,
) -> None:
    result = plan(definition, l7=[f"LA-1,{NAME},2025-09-20,2026-11-04,2026-06-19,,CPN,SW-1"])
    assert events(result, "LA-1") == [
        ("referral_received", None, "2025-09-20"),
        ("significant_harm_concern", None, "2025-09-20"),
        ("strategy_discussion_held", "s47", "2025-09-20"),
        ("icpc_held", "cp_plan", "2025-09-20"),
        ("rcpc_held", "continue", "2026-06-19"),
        ("cp_visit", None, "2026-11-04"),
    ]
    [case] = result.cases
    digest = hashlib.sha256(b"LA-1").hexdigest()[:8]
    assert [e.event_id for e in case.events] == [
        f"imp.{digest}.L7.cpp_start.referral_received",
        f"imp.{digest}.L7.cpp_start.significant_harm_concern",
        f"imp.{digest}.L7.cpp_start.strategy_discussion_held",
        f"imp.{digest}.L7.cpp_start.icpc_held",
        f"imp.{digest}.L7.latest_review.rcpc_held",
        f"imp.{digest}.L7.last_visit.cp_visit",
    ]
    assert {e.recorded_by for e in case.events} == {IMPORTED_BY}
    assert case.allocation.team == "CPN"
    assert case.stages["main"] == "cp_plan"
    assert case.stages["assessment"] == "none"  # no assessment is invented
    assert [note.split(":")[0] for note in case.notes] == [
        "referral_received synthesised on Child Protection Plan Start Date 2025-09-20 "
        "(list 7, l7.csv",
        "significant_harm_concern synthesised on Child Protection Plan Start Date 2025-09-20 "
        "(list 7, l7.csv",
        "strategy_discussion_held",
    ]
    clocks = {clock.clock_id: clock for clock in case.clocks}
    assert set(clocks) == {
        "first_core_group",
        "cp_visits",
        "cp_plan_duration",
        "review_conferences",
    }
    assert clocks["cp_visits"].due_date == date(2026, 11, 18)
    assert clocks["cp_visits"].standing == "overdue"
    assert clocks["review_conferences"].due_date == date(2026, 12, 19)
    assert clocks["cp_plan_duration"].standing == "running"  # 14 months: warns at 15
    assert clocks["first_core_group"].undated_by_lists
    assert not clocks["cp_visits"].undated_by_lists


def test_a_plan_with_its_referral_assessment_and_enquiry_uses_each_recorded_date(
    definition: Definition,
) -> None:
    result = plan(
        definition,
        l3=[f"LA-2,{NAME},2026-09-01,No,AE,SW-AE-1"],
        l4=[f"LA-2,{NAME},2026-09-02,2026-10-20,AE,SW-AE-1"],
        l5=[f"LA-2,{NAME},2026-09-10,No,2026-09-30,Yes,AE,SW-AE-1"],
        l7=[f"LA-2,{NAME},2026-09-30,2026-11-12,,,CPN,SW-CPN-1"],
    )
    assert events(result, "LA-2") == [
        ("referral_received", None, "2026-09-01"),
        ("referral_decision", "assessment", "2026-09-02"),
        ("significant_harm_concern", None, "2026-09-10"),
        ("strategy_discussion_held", "s47", "2026-09-10"),
        ("icpc_held", "cp_plan", "2026-09-30"),
        ("assessment_completed", None, "2026-10-20"),
        ("cp_visit", None, "2026-11-12"),
    ]
    [case] = result.cases
    assert (case.allocation.team, case.allocation.worker) == ("CPN", "SW-CPN-1")
    assert case.stages == {
        "main": "cp_plan",
        "assessment": "complete",
        "allocation": "allocated",
        "legal": "none",
        "emergency": "none",
    }
    assert {clock.clock_id: clock.due_date.isoformat() for clock in case.clocks} == {
        "first_core_group": "2026-10-14",
        "first_review_conference": "2026-12-30",
        "cp_visits": "2026-11-26",
        "cp_plan_duration": "2028-03-30",
    }


def test_an_enquiry_awaiting_its_conference_keeps_the_icpc_clock(definition: Definition) -> None:
    result = plan(
        definition,
        l3=[f"LA-3,{NAME},2026-10-22,No,AW,SW-AW-1"],
        l5=[f"LA-3,{NAME},2026-10-23,,,,AW,SW-AW-1"],
    )
    assert events(result, "LA-3") == [
        ("referral_received", None, "2026-10-22"),
        ("significant_harm_concern", None, "2026-10-23"),
        ("strategy_discussion_held", "s47", "2026-10-23"),
    ]
    [case] = result.cases
    [icpc] = case.clocks
    assert (icpc.clock_id, icpc.due_date, icpc.standing, icpc.level_name) == (
        "icpc",
        date(2026, 11, 13),
        "escalated",
        "service_manager",
    )
    assert icpc.alert_key == "LA-3/icpc/1/2"


def test_a_referral_with_nothing_after_it_awaits_a_decision(definition: Definition) -> None:
    result = plan(definition, l3=[f"LA-4,{NAME},2026-11-17,No,AE,"])
    assert events(result, "LA-4") == [("referral_received", None, "2026-11-17")]
    [case] = result.cases
    assert case.allocation.worker is None
    [decision] = case.clocks
    assert (decision.clock_id, decision.standing) == ("referral_decision", "overdue")


def test_closed_work_is_skipped_not_opened(definition: Definition) -> None:
    result = plan(
        definition,
        l3=[f"LA-5,{NAME},2026-11-02,Yes,AE,SW-1", f"LA-6,{NAME},2026-08-03,No,AE,SW-1"],
        l4=[f"LA-6,{NAME},2026-08-04,2026-09-15,AE,SW-1"],
    )
    assert result.cases == []
    assert [(s.case_ref, s.reason) for s in result.skipped] == [
        (
            "LA-5",
            "nothing open to keep (no further action on Date of referral 2026-11-02 "
            "(list 3, l3.csv:2))",
        ),
        (
            "LA-6",
            "nothing open to keep (Continuous Assessment Date of Authorisation 2026-09-15 "
            "(list 4, l4.csv:2))",
        ),
    ]
    assert result.rejected_rows == []


def test_a_child_in_need_plan_from_list_6_dates_what_the_lists_do_not(
    definition: Definition,
) -> None:
    result = plan(definition, l6=[f"LA-7,{NAME},2026-06-22,,c) Child in need plan,AW,SW-1"])
    assert events(result, "LA-7") == [
        ("referral_received", None, "2026-06-22"),
        ("referral_decision", "assessment", "2026-06-22"),
        ("assessment_completed", None, "2026-06-22"),
        ("cin_plan_started", None, "2026-06-22"),
    ]
    [case] = result.cases
    assert case.stages["main"] == "cin_plan"
    [review] = case.clocks
    assert (review.clock_id, review.due_date, review.undated_by_lists) == (
        "cin_plan_review",
        date(2026, 9, 22),
        True,
    )
    assert any("CIN census" in note for note in case.notes)


def test_a_plan_that_ended_steps_down_to_the_child_in_need_plan(definition: Definition) -> None:
    result = plan(
        definition,
        l6=[f"LA-8,{NAME},2025-12-01,,Child in need plan,AW,SW-1"],
        l7=[f"LA-8,{NAME},2026-01-10,2026-08-20,2026-09-01,2026-09-01,CPN,SW-1"],
    )
    assert events(result, "LA-8")[-3:] == [
        ("icpc_held", "cp_plan", "2026-01-10"),
        ("cp_visit", None, "2026-08-20"),
        ("rcpc_held", "end_step_down_cin", "2026-09-01"),
    ]
    [case] = result.cases
    assert case.stages["main"] == "cin_plan"
    assert [clock.clock_id for clock in case.clocks] == ["cin_plan_review"]
    assert case.clocks[0].due_date == date(2026, 12, 1)


def test_a_row_that_cannot_be_translated_rejects_its_case_and_only_its_case(
    definition: Definition,
) -> None:
    result = plan(
        definition,
        l3=[f"LA-9,{NAME},2026-11-02,No,AE,SW-1", f"LA-10,{NAME},2026-11-17,No,AE,SW-1"],
        l7=[f"LA-9,{NAME},2026-05-04,2026-11-10,,,CPN,SW-1"],
    )
    assert [case.case_ref for case in result.cases] == ["LA-10"]
    assert result.rejected_cases == ["LA-9"]
    assert [str(issue) for issue in result.issues] == [
        "l3.csv:2 [LA-9]: the referral of 2026-11-02 came after Child Protection Plan Start "
        "Date 2026-05-04 (list 7, l7.csv:2) opened the current stage; child-protection "
        "records a referral only on a case with nothing open",
        "l7.csv:2 [LA-9]: not imported: the row at l3.csv:2 was rejected",
    ]
    assert [issue.severity for issue in result.issues] == [Severity.REJECTED, Severity.NOTE]


def test_a_bad_row_keeps_the_rest_of_its_case_out(definition: Definition) -> None:
    result = plan(
        definition,
        l3=[f"LA-11,{NAME},2026-02-30,No,AE,SW-1"],
        l4=[f"LA-11,{NAME},2026-10-01,,AE,SW-1"],
    )
    assert result.cases == []
    assert result.rejected_cases == ["LA-11"]
    assert [issue.line for issue in result.issues] == [2, 2]
    assert result.issues[1].reason.startswith(
        "not imported: another row of this case was rejected (l3.csv:2 [LA-11]: Date of referral"
    )


@pytest.mark.parametrize(
    ("lists", "reason"),
    [
        (
            {
                "l5": [f"LA-12,{NAME},2026-09-10,No,2026-09-29,Yes,CPN,SW-1"],
                "l7": [f"LA-12,{NAME},2026-09-30,,,,CPN,SW-1"],
            },
            "l5.csv:2 [LA-12]: the Date of Initial Child Protection Conference 2026-09-29 "
            "differs from Child Protection Plan Start Date 2026-09-30 (list 7, l7.csv:2); a "
            "plan starts at its conference",
        ),
        (
            {
                "l5": [f"LA-12,{NAME},2026-10-10,,,,CPN,SW-1"],
                "l7": [f"LA-12,{NAME},2026-09-30,,,,CPN,SW-1"],
            },
            "l5.csv:2 [LA-12]: Strategy discussion initiating Section 47 Enquiry Start Date "
            "2026-10-10 (list 5, l5.csv:2) is still open but it began during the plan from "
            "2026-09-30; child-protection cannot hold it beside the case's current stage",
        ),
        (
            {"l6": [f"LA-12,{NAME},2026-09-01,,b) Child Protection plan,CPN,SW-1"]},
            "l6.csv:2 [LA-12]: Case Status is 'Child Protection plan' but list 7 has no open "
            "plan for the child",
        ),
    ],
)
def test_lists_that_contradict_each_other_reject_the_case(
    definition: Definition, lists: dict[str, list[str]], reason: str
) -> None:
    result = plan(definition, **lists)
    assert result.cases == []
    assert str(result.rejected_rows[0]) == reason


def test_children_in_care_are_reported_as_not_supported_yet(definition: Definition) -> None:
    result = plan(
        definition,
        l6=[f"LA-13,{NAME},2024-01-01,,a) Looked after child,CIC,SW-1"],
        l8=[f"LA-13,{NAME},2024-03-01,ZZ99 3WZ,CIC,SW-1"],
    )
    assert result.cases == []
    assert result.rejected_rows == []
    assert [str(issue) for issue in result.issues] == [
        "l6.csv:2 [LA-13]: Case Status 'Looked after child': not supported by definition "
        "child-protection 2026.1 yet; nothing imported from this row",
        "l8.csv:2 [LA-13]: List 8: children in care: not supported by definition "
        "child-protection 2026.1 yet; nothing imported from this row",
    ]


def test_no_unread_column_reaches_any_event_plan_or_report(definition: Definition) -> None:
    result = plan(
        definition,
        l3=[f"LA-14,{NAME},2026-11-02,No,AE,SW-1", f"Jane Smith,{NAME},2026-11-02,No,AE,SW-1"],
        l7=[f"LA-15,{NAME},2025-09-20,2026-11-04,,,CPN,SW-1"],
        l8=[f"LA-16,{NAME},2024-03-01,ZZ99 3WZ,CIC,SW-1"],
    )
    everything = result.model_dump_json() + plan_report(result, show_cases=True, show_notes=True)
    for secret in ("Zephyrina", "Quillfeather", "Jane", "Smith", "ZZ99"):
        assert secret not in everything


def test_planning_the_same_files_twice_gives_the_same_events(definition: Definition) -> None:
    rows = {"l7": [f"LA-17,{NAME},2025-09-20,2026-11-04,,,CPN,SW-1"]}
    first, second = plan(definition, **rows), plan(definition, **rows)
    assert [e.model_dump(exclude={"recorded_at"}) for e in first.cases[0].events] == [
        e.model_dump(exclude={"recorded_at"}) for e in second.cases[0].events
    ]


def test_a_definition_without_the_imported_events_is_refused(definition: Definition) -> None:
    events = {k: v for k, v in definition.events.items() if k != "cp_visit"}
    other = definition.model_copy(update={"events": events})
    with pytest.raises(UnsuitableDefinitionError, match="lacks what the Annex A import produces"):
        plan_import([], other, TODAY)


def test_a_plan_after_an_assessment_with_no_enquiry_listed_gets_its_concern(
    definition: Definition,
) -> None:
    result = plan(
        definition,
        l4=[f"LA-18,{NAME},2026-08-03,,AE,SW-1"],
        l7=[f"LA-18,{NAME},2026-09-01,2026-11-16,,,CPN,SW-1"],
    )
    assert events(result, "LA-18") == [
        ("referral_received", None, "2026-08-03"),
        ("referral_decision", "assessment", "2026-08-03"),
        ("significant_harm_concern", None, "2026-09-01"),
        ("strategy_discussion_held", "s47", "2026-09-01"),
        ("icpc_held", "cp_plan", "2026-09-01"),
        ("cp_visit", None, "2026-11-16"),
    ]
    assert result.cases[0].stages["assessment"] == "in_progress"


def test_random_lists_never_yield_events_the_core_refuses(definition: Definition) -> None:
    # Whatever the lists say, a case is either translated into events the core accepts,
    # skipped, or rejected for a reason in the data: never refused by the definition.
    rng = random.Random(7)

    def day(blank: float = 0.25) -> str:
        return "" if rng.random() < blank else str(TODAY - timedelta(days=rng.randrange(900)))

    def yes_no() -> str:
        return rng.choice(["", "Yes", "No"])

    status = ["Child Protection plan", "Child in need plan", "Open assessment", "Closed episode"]
    lists: dict[str, list[str]] = {key: [] for key in ("l3", "l4", "l5", "l6", "l7")}
    for number in range(600):
        ref = f"R-{number}"
        cells = {
            "l3": f"{day(0)},{yes_no()}",
            "l4": f"{day(0)},{day()}",
            "l5": f"{day(0)},{yes_no()},{day()},{yes_no()}",
            "l6": f"{day()},,{rng.choice(status)}",
            "l7": f"{day(0)},{day()},{day()},{day(0.7)}",
        }
        for key, row in cells.items():
            if rng.random() < 0.45:
                lists[key].append(f"{ref},{NAME},{row},T1,SW-1")
    result = plan(definition, **lists)
    refused = [issue for issue in result.rejected_rows if "refuses" in issue.reason]
    assert refused == []
    assert len(result.cases) > 50
