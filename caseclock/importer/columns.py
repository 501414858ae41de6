"""The Annex A lists the importer reads, and the few columns it takes from each.

Ofsted's ILACS Annex A asks for child-level lists at the start of an inspection. Their
headings (as in Ofsted's template, e.g. "Child Unique ID", "Allocated Team") are the
canonical names here; the CIN census item names (e.g. ``CPPstartDate``) and the CamelCase
forms in ``shared/domain/TIMESCALES.md`` are accepted as aliases. Headings are matched
ignoring case, spaces and punctuation.

Every other column (names, dates of birth, gender, ethnicity, disability, categories of
abuse, placement details ...) is never read: the reader takes only the cells listed here.
"""

import re
from dataclasses import dataclass
from enum import IntEnum, StrEnum


class AnnexList(IntEnum):
    """The Annex A child-level lists the importer knows (lists 1 and 2 are contacts, early help)."""

    REFERRALS = 3
    ASSESSMENTS = 4
    SECTION_47 = 5
    CHILDREN_IN_NEED = 6
    CHILD_PROTECTION = 7
    CHILDREN_IN_CARE = 8
    CARE_LEAVERS = 9


class ColumnKind(StrEnum):
    """How a cell is read and checked."""

    CASE_REF = "case_ref"
    TEAM = "team"
    WORKER = "worker"
    DATE = "date"
    YES_NO = "yes_no"
    CASE_STATUS = "case_status"


@dataclass(frozen=True)
class Column:
    """One column the importer reads: its Annex A heading, aliases and meaning."""

    field: str
    heading: str
    kind: ColumnKind
    required: bool
    meaning: str
    aliases: tuple[str, ...] = ()

    def names(self) -> tuple[str, ...]:
        """The heading and its aliases, normalised for matching."""
        return tuple(normalise_heading(name) for name in (self.heading, *self.aliases))


@dataclass(frozen=True)
class ListSpec:
    """One Annex A list: its columns, the date that identifies a row, what it can start."""

    number: AnnexList
    title: str
    columns: tuple[Column, ...]
    key_field: str
    starts: str
    supported: bool = True

    def column(self, field: str) -> Column:
        """The column that fills ``field``."""
        return next(column for column in self.columns if column.field == field)

    def header(self) -> list[str]:
        """The accepted header, Annex A headings in order."""
        return [column.heading for column in self.columns]


def normalise_heading(text: str) -> str:
    """``"Allocated Team"``, ``"AllocatedTeam"`` and ``"allocated_team"`` all match."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


_CHILD_ID = Column(
    "case_ref",
    "Child Unique ID",
    ColumnKind.CASE_REF,
    required=True,
    meaning="The child's identifier in the case system: a code with a digit, never a name. "
    "Rows of every list are grouped into cases by it.",
    aliases=("ChildUniqueID", "Child ID", "LAchildID", "Case Reference", "CaseRef"),
)
_TEAM = Column(
    "team",
    "Allocated Team",
    ColumnKind.TEAM,
    required=True,
    meaning="Team code (letters, digits, '.', '_' or '-'); escalations go to its managers.",
    aliases=("AllocatedTeam",),
)
_WORKER = Column(
    "worker",
    "Allocated Worker",
    ColumnKind.WORKER,
    required=True,
    meaning="Staff code of the allocated worker; blank or 'Unallocated' for none.",
    aliases=("AllocatedWorker",),
)


def _date(field: str, heading: str, meaning: str, *aliases: str, required: bool = True) -> Column:
    return Column(field, heading, ColumnKind.DATE, required, meaning, aliases)


LISTS: dict[AnnexList, ListSpec] = {
    AnnexList.REFERRALS: ListSpec(
        AnnexList.REFERRALS,
        "List 3: referrals",
        (
            _CHILD_ID,
            _date(
                "referral_date",
                "Date of referral",
                "The referral: referral_received.",
                "ReferralDate",
                "CINreferralDate",
            ),
            Column(
                "referral_nfa",
                "Referral NFA?",
                ColumnKind.YES_NO,
                required=False,
                meaning="Yes: the referral ended in no further action (nothing to keep).",
                aliases=("ReferralNFA",),
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="referral_date",
        starts="referral_decision (1 working day) while nothing later is listed; the date "
        "also anchors the 45-working-day assessment clock",
    ),
    AnnexList.ASSESSMENTS: ListSpec(
        AnnexList.ASSESSMENTS,
        "List 4: assessments",
        (
            _CHILD_ID,
            _date(
                "assessment_start",
                "Continuous Assessment Start Date",
                "The assessment began (the decision to assess is dated on it).",
                "Assessment start date",
                "AssessmentActualStartDate",
            ),
            _date(
                "assessment_authorised",
                "Continuous Assessment Date of Authorisation",
                "assessment_completed; blank while the assessment is open.",
                "Assessment completion date",
                "AssessmentAuthorisationDate",
                required=False,
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="assessment_start",
        starts="assessment (45 working days from the referral) while not authorised",
    ),
    AnnexList.SECTION_47: ListSpec(
        AnnexList.SECTION_47,
        "List 5: section 47 enquiries and ICPCs",
        (
            _CHILD_ID,
            _date(
                "s47_start",
                "Strategy discussion initiating Section 47 Enquiry Start Date",
                "strategy_discussion_held with outcome s47.",
                "S47ActualStartDate",
                "Strategy discussion date",
            ),
            Column(
                "icpc_not_required",
                "Was an Initial Child Protection Conference deemed unnecessary?",
                ColumnKind.YES_NO,
                required=False,
                meaning="Yes: the enquiry ended without a conference (s47_concluded).",
                aliases=("ICPCnotRequired",),
            ),
            _date(
                "icpc_date",
                "Date of Initial Child Protection Conference",
                "icpc_held; blank while the conference is awaited.",
                "DateOfInitialCPC",
                required=False,
            ),
            Column(
                "icpc_plan",
                "Did the Initial Child Protection Conference Result in a Child Protection Plan",
                ColumnKind.YES_NO,
                required=False,
                meaning="The outcome of icpc_held: cp_plan (Yes) or no_plan (No).",
                aliases=("ICPCresultedInPlan",),
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="s47_start",
        starts="icpc (15 working days from the strategy discussion) while no conference is dated",
    ),
    AnnexList.CHILDREN_IN_NEED: ListSpec(
        AnnexList.CHILDREN_IN_NEED,
        "List 6: children in need",
        (
            _CHILD_ID,
            _date(
                "cin_start",
                "CIN Start Date",
                "Start of the episode of need (the referral date in the CIN census); "
                "the referral when list 3 has none.",
                "CINStartDate",
                required=False,
            ),
            _date(
                "cin_plan_start",
                "CIN Plan Start Date",
                "Optional (CIN census item, not in Annex A): cin_plan_started.",
                "CINPlanStartDate",
                required=False,
            ),
            _date(
                "cin_closure",
                "CIN Closure Date",
                "The episode closed (nothing to keep).",
                "CINclosureDate",
                required=False,
            ),
            Column(
                "case_status",
                "Case Status",
                ColumnKind.CASE_STATUS,
                required=True,
                meaning="a) Looked after child, b) Child Protection plan, c) Child in need "
                "plan, d) Open assessment, e) Closed episode.",
                aliases=("CaseStatus",),
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="cin_start",
        starts="cin_plan_review (3 months, local default) for a child in need plan",
    ),
    AnnexList.CHILD_PROTECTION: ListSpec(
        AnnexList.CHILD_PROTECTION,
        "List 7: child protection",
        (
            _CHILD_ID,
            _date(
                "cpp_start",
                "Child Protection Plan Start Date",
                "icpc_held with outcome cp_plan (the plan starts at the conference).",
                "CPPstartDate",
            ),
            _date(
                "last_visit",
                "Date of the Last Statutory Visit",
                "cp_visit.",
                "DateOfLastStatutoryVisit",
                required=False,
            ),
            _date(
                "latest_review",
                "Date of latest review conference",
                "rcpc_held with outcome continue (or the ending outcome on the end date).",
                "DateOfLatestReviewConf",
                "CPPreviewDate",
                required=False,
            ),
            _date(
                "cpp_end",
                "Child Protection Plan End Date",
                "The plan ended: stepped down to a CIN plan if list 6 shows one, else "
                "nothing to keep.",
                "CPPendDate",
                required=False,
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="cpp_start",
        starts="cp_visits (10 working days), first_review_conference (3 months) or "
        "review_conferences (6 months), first_core_group (10 working days), "
        "cp_plan_duration (warn 15, escalate 18, flag 24 months)",
    ),
    AnnexList.CHILDREN_IN_CARE: ListSpec(
        AnnexList.CHILDREN_IN_CARE,
        "List 8: children in care",
        (
            _CHILD_ID,
            _date(
                "looked_after_start",
                "Date Started to be Looked After",
                "Would start the first review (20 working days) in a children-in-care definition.",
                "DateStartedToBeLookedAfter",
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="looked_after_start",
        starts="nothing yet: child-protection 2026.1 has no children-in-care clocks",
        supported=False,
    ),
    AnnexList.CARE_LEAVERS: ListSpec(
        AnnexList.CARE_LEAVERS,
        "List 9: care leavers",
        (
            _CHILD_ID,
            _date(
                "latest_pathway_plan",
                "Latest Pathway Plan Review Date",
                "Would start pathway plan reviews (6 months) in a care-leavers definition.",
                "LatestPathwayPlan",
                required=False,
            ),
            _TEAM,
            _WORKER,
        ),
        key_field="latest_pathway_plan",
        starts="nothing yet: child-protection 2026.1 has no care-leaver clocks",
        supported=False,
    ),
}

# A file is recognised by the heading only its list has (the first column after the id).
_SIGNATURES: dict[AnnexList, str] = {
    AnnexList.REFERRALS: "referral_date",
    AnnexList.ASSESSMENTS: "assessment_start",
    AnnexList.SECTION_47: "s47_start",
    AnnexList.CHILDREN_IN_NEED: "case_status",
    AnnexList.CHILD_PROTECTION: "cpp_start",
    AnnexList.CHILDREN_IN_CARE: "looked_after_start",
    AnnexList.CARE_LEAVERS: "latest_pathway_plan",
}


def recognise(headings: list[str]) -> list[AnnexList]:
    """The lists whose signature heading (or an alias) appears in ``headings``."""
    present = {normalise_heading(heading) for heading in headings}
    return [
        number
        for number, field in _SIGNATURES.items()
        if present & set(LISTS[number].column(field).names())
    ]


def parse_list_number(text: str) -> AnnexList:
    """``"7"``, ``"list7"`` or ``"List 7"`` as a list; ValueError for anything else."""
    digits = normalise_heading(text).removeprefix("list")
    if not digits.isdigit() or int(digits) not in {item.value for item in AnnexList}:
        known = ", ".join(str(item.value) for item in AnnexList)
        raise ValueError(f"unknown Annex A list {text!r}; the importer reads lists {known}")
    return AnnexList(int(digits))
