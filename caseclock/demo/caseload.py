"""A demo caseload whose clocks are, today, due soon, overdue and escalated at several levels.

Every date is computed back from today with the calendar, so the demo looks the same on any
day. Case references are fictional codes; there is no personal data anywhere.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from caseclock.calendar import LONDON, WorkingCalendar, add_months
from caseclock.core.events import CaseEvent
from workflows.case_types import Allocation


@dataclass(frozen=True)
class DemoCase:
    """A case to open: its reference, who holds it, and its events so far."""

    case_ref: str
    allocation: Allocation
    story: str
    events: list[CaseEvent] = field(default_factory=list)


class _Story:
    """Builds a case's events, each dated a number of working days (or months) ago."""

    def __init__(self, case_ref: str, today: date, calendar: WorkingCalendar, worker: str) -> None:
        self.case_ref = case_ref
        self.today = today
        self.calendar = calendar
        self.worker = worker
        self.events: list[CaseEvent] = []

    def wd_ago(self, days: int) -> date:
        return self.calendar.add_working_days(self.today, -days) if days else self.today

    def months_ago(self, months: int) -> date:
        return add_months(self.today, -months)

    def add(
        self, on: date, event_type: str, outcome: str | None = None, **data: int | str
    ) -> "_Story":
        at = datetime.combine(self.today, time(9), tzinfo=LONDON)
        self.events.append(
            CaseEvent(
                event_id=f"{self.case_ref}-{len(self.events) + 1}",
                type=event_type,
                effective_date=on,
                effective_at=datetime.combine(on, time(10), tzinfo=LONDON)
                if event_type == "police_protection_started"
                else None,
                recorded_at=at,
                recorded_by=self.worker,
                outcome=outcome,
                data=data,
            )
        )
        return self


def demo_caseload(today: date, calendar: WorkingCalendar) -> list[DemoCase]:  # noqa: PLR0915
    """Twelve cases across four teams, each drifting (or not) in a different way."""
    cases: list[DemoCase] = []

    def case(ref: str, team: str, worker: str | None, story: str) -> _Story:
        builder = _Story(ref, today, calendar, worker or "TM-AE")
        cases.append(DemoCase(ref, Allocation(team=team, worker=worker), story, builder.events))
        return builder

    s = case("DEMO-0001", "AE", "SW-AE-1", "Referral awaiting a decision for 3 working days")
    s.add(s.wd_ago(3), "referral_received")
    s = case("DEMO-0002", "AE", "SW-AE-2", "Assessment due in 2 working days")
    s.add(s.wd_ago(43), "referral_received").add(s.wd_ago(42), "referral_decision", "assessment")
    s = case("DEMO-0003", "AW", "SW-AW-1", "ICPC 6 working days overdue (head of service)")
    s.add(s.wd_ago(22), "referral_received")
    s.add(s.wd_ago(21), "referral_decision", "strategy_discussion")
    s.add(s.wd_ago(21), "strategy_discussion_held", "s47")
    s = case("DEMO-0004", "CPN", "SW-CPN-1", "CP plan: visit overdue, first review escalated")
    s.add(s.months_ago(5), "referral_received")
    s.add(s.months_ago(5), "referral_decision", "strategy_discussion")
    s.add(s.months_ago(5), "strategy_discussion_held", "s47")
    icpc = calendar.add_working_days(s.months_ago(5), 12)
    s.add(icpc, "icpc_held", "cp_plan").add(calendar.add_working_days(icpc, 8), "core_group_held")
    s.add(calendar.add_working_days(icpc, 9), "assessment_completed")
    s.add(s.wd_ago(13), "cp_visit").add(s.wd_ago(18), "core_group_held")
    s = case("DEMO-0005", "AE", "SW-AE-3", "Keeps to time: decided the day it arrived")
    s.add(s.wd_ago(1), "referral_received").add(s.wd_ago(1), "referral_decision", "assessment")
    s = case("DEMO-0006", "CPN", "SW-CPN-2", "PLO pre-proceedings past 16 weeks, no decision")
    s.add(s.months_ago(8), "referral_received").add(
        s.months_ago(8), "referral_decision", "assessment"
    )
    s.add(s.months_ago(7), "assessment_completed").add(s.months_ago(7), "cin_plan_started")
    s.add(s.wd_ago(95), "letter_before_proceedings").add(s.wd_ago(88), "pre_proceedings_meeting")
    s.add(s.wd_ago(60), "pre_proceedings_review").add(s.wd_ago(30), "pre_proceedings_review")
    s.add(s.wd_ago(2), "pre_proceedings_review").add(s.wd_ago(2), "cin_plan_reviewed")
    s = case("DEMO-0007", "AW", "SW-AW-2", "Waiting 12 working days for transfer (escalated)")
    s.add(s.wd_ago(30), "referral_received").add(s.wd_ago(29), "referral_decision", "assessment")
    s.add(s.wd_ago(12), "transfer_requested")
    s = case("DEMO-0008", "CIC", "SW-CIC-1", "Care proceedings at week 24 of 26")
    s.add(s.months_ago(7), "referral_received").add(
        s.months_ago(7), "referral_decision", "assessment"
    )
    s.add(s.months_ago(6), "assessment_completed").add(s.months_ago(6), "cin_plan_started")
    s.add(s.wd_ago(118), "proceedings_issued").add(s.wd_ago(105), "cmh_held")
    s.add(s.wd_ago(5), "cin_plan_reviewed")
    s = case("DEMO-0009", "CPN", "SW-CPN-3", "CP plan at 16 months (duration warning)")
    s.add(s.months_ago(17), "referral_received")
    s.add(s.months_ago(17), "referral_decision", "strategy_discussion")
    s.add(s.months_ago(17), "strategy_discussion_held", "s47")
    s.add(s.months_ago(16), "icpc_held", "cp_plan").add(s.months_ago(16), "core_group_held")
    s.add(s.months_ago(16), "assessment_completed")
    s.add(s.months_ago(13), "rcpc_held", "continue").add(s.months_ago(7), "rcpc_held", "continue")
    s.add(s.months_ago(1), "rcpc_held", "continue").add(s.wd_ago(15), "core_group_held")
    s.add(s.wd_ago(4), "cp_visit").add(s.wd_ago(3), "core_group_held")
    s = case("DEMO-0010", "AW", None, "Unallocated: strategy discussion overdue")
    s.add(s.wd_ago(4), "referral_received").add(s.wd_ago(4), "significant_harm_concern")
    s = case("DEMO-0011", "AE", "SW-AE-1", "Late-recorded referral: decision long overdue")
    s.add(s.wd_ago(12), "referral_received")
    s = case("DEMO-0012", "CPN", "SW-CPN-1", "Police protection started yesterday")
    s.add(s.wd_ago(3), "referral_received").add(s.wd_ago(3), "referral_decision", "assessment")
    s.add(s.today - timedelta(days=1), "police_protection_started")
    return cases
