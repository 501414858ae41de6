"""Where a case stands now, as the Annex A lists show it: its latest rows and its target stage.

The target is the furthest open item, in order of precedence: an open protection plan, a
child in need plan after a plan ended, an enquiry awaiting its conference, a child in need
plan, an open assessment, a referral awaiting a decision. A case with none is skipped.
Contradictions between lists reject the case.
"""

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from caseclock.importer.chain import RejectedCaseError, fact
from caseclock.importer.columns import AnnexList
from caseclock.importer.models import Row
from caseclock.importer.values import CaseStatus


class Target(StrEnum):
    """Where the case stands now, as the lists show it."""

    CP_PLAN = "cp_plan"
    CIN_AFTER_PLAN = "cin_after_plan"
    S47 = "s47"
    CIN_PLAN = "cin_plan"
    ASSESSMENT = "assessment"
    REFERRAL = "referral"


@dataclass(frozen=True)
class Latest:
    """The latest row of each list for one case (earlier rows are superseded)."""

    referral: Row | None
    assessment: Row | None
    s47: Row | None
    cin: Row | None
    plan: Row | None

    def rows(self) -> list[Row]:
        """The rows present."""
        found = (self.referral, self.assessment, self.s47, self.cin, self.plan)
        return [row for row in found if row is not None]


class Skip(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """Nothing is open for this case: not opened, not an error."""


def open_s47(row: Row | None) -> bool:
    """An enquiry with no conference dated, not deemed unnecessary."""
    return (
        row is not None
        and row.date("icpc_date") is None
        and row.flag("icpc_not_required") is not True
    )


def open_assessment(row: Row | None) -> bool:
    """An assessment not yet authorised."""
    return row is not None and row.date("assessment_authorised") is None


def cin_open(row: Row | None) -> bool:
    """List 6 says child in need plan, and the episode has not closed."""
    return (
        row is not None
        and row.text("case_status") == CaseStatus.CIN_PLAN
        and row.date("cin_closure") is None
    )


def check_nfa(latest: Latest) -> None:
    """Reject a referral recorded as no further action that something later follows."""
    referral = latest.referral
    if referral is None or referral.flag("referral_nfa") is not True:
        return
    received = referral.date("referral_date")
    assert received is not None  # noqa: S101 (a required column)
    later = [
        fact_
        for fact_ in (
            fact(latest.assessment, "assessment_start"),
            fact(latest.s47, "s47_start"),
            fact(latest.plan, "cpp_start"),
        )
        if fact_ is not None and fact_.on >= received
    ]
    if later:
        raise RejectedCaseError(
            referral,
            f"impossible sequence: the referral of {received.isoformat()} is recorded as no "
            f"further action, but {later[0].describe()} follows it",
        )


def check_status(latest: Latest) -> None:
    """Reject a list 6 Case Status that contradicts lists 4 and 7."""
    cin = latest.cin
    if cin is None:
        return
    status = cin.text("case_status")
    plan_open = latest.plan is not None and latest.plan.date("cpp_end") is None
    if status == CaseStatus.CP_PLAN and not plan_open:
        raise RejectedCaseError(
            cin, "Case Status is 'Child Protection plan' but list 7 has no open plan for the child"
        )
    if status == CaseStatus.OPEN_ASSESSMENT and not open_assessment(latest.assessment):
        raise RejectedCaseError(
            cin, "Case Status is 'Open assessment' but list 4 has no open assessment for the child"
        )
    if status == CaseStatus.CIN_PLAN and cin.date("cin_closure") is not None:
        raise RejectedCaseError(
            cin, "Case Status is 'Child in need plan' but the episode has a CIN Closure Date"
        )
    if status == CaseStatus.CIN_PLAN and plan_open:
        raise RejectedCaseError(
            cin, "Case Status is 'Child in need plan' but list 7 shows an open protection plan"
        )


def target_of(latest: Latest) -> tuple[Target, Row]:
    """The furthest open item in the lists, in order of precedence, and its row."""
    plan, s47, cin = latest.plan, latest.s47, latest.cin
    received = latest.referral.date("referral_date") if latest.referral else None
    plan_end = plan.date("cpp_end") if plan is not None else None
    conference_made_plan = (
        plan is None
        and s47 is not None
        and s47.flag("icpc_plan") is True
        and s47.date("icpc_date") is not None
    )
    candidates: list[tuple[bool, Target, Row | None]] = [
        (plan is not None and plan_end is None, Target.CP_PLAN, plan),
        (
            cin_open(cin) and plan_end is not None and (received is None or received <= plan_end),
            Target.CIN_AFTER_PLAN,
            cin,
        ),
        (open_s47(s47), Target.S47, s47),
        (conference_made_plan, Target.CP_PLAN, s47),
        (cin_open(cin), Target.CIN_PLAN, cin),
        (open_assessment(latest.assessment), Target.ASSESSMENT, latest.assessment),
        (_awaiting_decision(latest), Target.REFERRAL, latest.referral),
    ]
    for applies, target, row in candidates:
        if applies and row is not None:
            return target, row
    raise Skip(_closed_reason(latest))


def _awaiting_decision(latest: Latest) -> bool:
    """A referral not ended in no further action, with nothing in the lists after it."""
    referral = latest.referral
    if referral is None or referral.flag("referral_nfa") is True:
        return False
    received = referral.date("referral_date") or date.min
    others = (latest.assessment, latest.s47, latest.plan)
    return all(
        row is None or (row.date(_KEY[row.list_number]) or date.min) < received for row in others
    )


_KEY = {
    AnnexList.REFERRALS: "referral_date",
    AnnexList.ASSESSMENTS: "assessment_start",
    AnnexList.SECTION_47: "s47_start",
    AnnexList.CHILDREN_IN_NEED: "cin_start",
    AnnexList.CHILD_PROTECTION: "cpp_start",
}


def _closed_reason(latest: Latest) -> str:
    facts = [
        fact(latest.referral, "referral_date")
        if latest.referral and latest.referral.flag("referral_nfa")
        else None,
        fact(latest.assessment, "assessment_authorised"),
        fact(latest.s47, "icpc_date"),
        fact(latest.plan, "cpp_end"),
        fact(latest.cin, "cin_closure"),
    ]
    ended = [f.describe() for f in facts if f is not None]
    if latest.referral and latest.referral.flag("referral_nfa"):
        ended[0] = "no further action on " + ended[0]
    if latest.s47 is not None and latest.s47.flag("icpc_not_required"):
        ended.append(f"no conference needed after {fact(latest.s47, 's47_start')}")
    detail = "; ".join(ended) if ended else "no open item in any list"
    return f"nothing open to keep ({detail})"
