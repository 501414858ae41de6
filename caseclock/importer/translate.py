"""Translate one case's rows (across lists 3 to 7) into the events that open it where it stands.

The case's *target* is the furthest open item in the lists: an open protection plan (list
7), a child in need plan after a plan ended, an enquiry awaiting its conference (list 5), a
child in need plan (list 6), an open assessment (list 4), or a referral awaiting a decision
(list 3). The events of the path that leads to it are built from the recorded dates; the
steps the definition needs but the lists do not date (the decision on a referral, a concern
of significant harm, a strategy discussion when list 5 has none) are synthesised on the
nearest known date and reported.

Rows outside that path are either closed history (reported as a note: they hold no running
clock, so leaving them out changes no clock) or open items the definition cannot hold
beside the target (the case is rejected: nothing of it is applied).
"""

from caseclock.importer.chain import Chain, Fact, RejectedCaseError, fact
from caseclock.importer.models import Row
from caseclock.importer.stage import (
    Latest,
    Target,
    check_nfa,
    check_status,
    cin_open,
    open_assessment,
    open_s47,
    target_of,
)
from caseclock.importer.values import CaseStatus


def translate(latest: Latest, chain: Chain) -> tuple[Target, Row]:
    """Fill ``chain`` with the case's opening events; returns the target and its row.

    Raises:
        RejectedCaseError: A row cannot be translated (the case is not applied).
        Skip: Nothing is open (the case is not opened).

    """
    check_nfa(latest)
    check_status(latest)
    target, row = target_of(latest)
    builder = _PathBuilder(latest, chain, target)
    builder.build()
    return target, row


def _on(subject: Fact | None) -> str:
    return "?" if subject is None else subject.on.isoformat()


class _PathBuilder:
    """Places the rows on the path to the target, then adds its events in order."""

    def __init__(self, latest: Latest, chain: Chain, target: Target) -> None:
        self.latest = latest
        self.chain = chain
        self.target = target
        self.referral = fact(latest.referral, "referral_date")
        self.assessment = fact(latest.assessment, "assessment_start")
        self.strategy = fact(latest.s47, "s47_start")
        self.plan = self._plan_start()

    def _plan_start(self) -> Fact | None:
        if self.target in {Target.CP_PLAN, Target.CIN_AFTER_PLAN}:
            return fact(self.latest.plan, "cpp_start") or fact(self.latest.s47, "icpc_date")
        return None

    # Placing rows ---------------------------------------------------------------------

    def build(self) -> None:
        stage_start = self._stage_start()
        self._place_referral(stage_start)
        self._place_assessment(stage_start)
        self._place_s47(stage_start)
        self._place_earlier_plan()
        self._place_cin()
        self._add_events()

    def _stage_start(self) -> Fact | None:
        """The fact that opened the target stage (None for a CIN plan with no start date)."""
        match self.target:
            case Target.CP_PLAN | Target.CIN_AFTER_PLAN:
                return self.plan
            case Target.S47:
                return self.strategy
            case Target.CIN_PLAN:
                return fact(self.latest.cin, "cin_plan_start")
            case Target.ASSESSMENT:
                return self.assessment
            case Target.REFERRAL:
                return self.referral

    def _place_referral(self, stage_start: Fact | None) -> None:
        if self.referral is None:
            return
        if stage_start is not None and self.referral.on > stage_start.on:
            raise RejectedCaseError(
                self.referral.row,
                f"the referral of {self.referral.on.isoformat()} came after "
                f"{stage_start.describe()} opened the current stage; child-protection "
                "records a referral only on a case with nothing open",
            )
        cin_start = fact(self.latest.cin, "cin_start")
        if (
            self.target is Target.CIN_PLAN
            and cin_start is not None
            and cin_start.on < self.referral.on
        ):
            raise RejectedCaseError(
                self.referral.row,
                f"the referral of {self.referral.on.isoformat()} came during the open episode "
                f"from {cin_start.describe()}; child-protection records a referral only on a "
                "case with nothing open",
            )

    def _outside(self, subject: Fact, is_open: bool, why: str) -> None:
        """A row off the path: closed history is noted, an open item rejects the case."""
        if is_open:
            raise RejectedCaseError(
                subject.row,
                f"{subject.describe()} is still open but {why}; child-protection cannot hold "
                "it beside the case's current stage",
            )
        self.chain.note(f"not imported (closed, no clock to keep): {subject.describe()}, {why}")

    def _place_assessment(self, stage_start: Fact | None) -> None:
        subject = self.assessment
        if subject is None:
            return
        is_open = open_assessment(subject.row)
        if self.referral is not None and subject.on < self.referral.on:
            self._outside(subject, is_open, f"it began before the referral of {self.referral.on}")
            self.assessment = None
        elif self.plan is not None and subject.on > self.plan.on:
            self._outside(subject, is_open, f"it began during the plan from {self.plan.on}")
            self.assessment = None
        elif self._after_cin_plan(subject, stage_start):
            self._outside(subject, is_open, f"it began after the CIN plan from {_on(stage_start)}")
            self.assessment = None

    def _after_cin_plan(self, subject: Fact, stage_start: Fact | None) -> bool:
        return (
            self.target is Target.CIN_PLAN
            and stage_start is not None
            and (subject.on > stage_start.on)
        )

    def _place_s47(self, stage_start: Fact | None) -> None:
        subject = self.strategy
        if subject is None:
            return
        row = subject.row
        is_open = open_s47(row)
        if self.referral is not None and subject.on < self.referral.on:
            if self.plan is not None and row.date("icpc_date") in {None, self.plan.on}:
                raise RejectedCaseError(
                    self.referral.row,
                    f"impossible sequence: the referral of {self.referral.on.isoformat()} is "
                    f"after {subject.describe()}, which led to the plan",
                )
            self._outside(subject, is_open, f"it began before the referral of {self.referral.on}")
            self.strategy = None
        elif self.plan is not None and subject.on > self.plan.on:
            self._outside(subject, is_open, f"it began during the plan from {self.plan.on}")
            self.strategy = None
        elif self._after_cin_plan(subject, stage_start):
            self._outside(subject, is_open, f"it began after the CIN plan from {_on(stage_start)}")
            self.strategy = None
        elif self.plan is not None and self.plan.row is not row:
            self._check_conference_matches_plan(subject)

    def _check_conference_matches_plan(self, strategy: Fact) -> None:
        assert self.plan is not None  # noqa: S101 (the caller checked)
        row = strategy.row
        conference = row.date("icpc_date")
        if row.flag("icpc_not_required") is True:
            raise RejectedCaseError(
                row,
                f"impossible sequence: list 5 says no conference was needed, but "
                f"{self.plan.describe()} starts a plan",
            )
        if conference is None:
            self.chain.note(
                f"list 5 ({row.where}) has no conference date; the plan start "
                f"{self.plan.on.isoformat()} is the conference"
            )
        elif conference != self.plan.on:
            raise RejectedCaseError(
                row,
                f"the Date of Initial Child Protection Conference {conference.isoformat()} "
                f"differs from {self.plan.describe()}; a plan starts at its conference",
            )
        elif row.flag("icpc_plan") is False:
            raise RejectedCaseError(
                row,
                f"impossible sequence: list 5 says the conference of {conference.isoformat()} "
                "made no plan, but list 7 starts a plan that day",
            )

    def _place_earlier_plan(self) -> None:
        plan = self.latest.plan
        if plan is None or self.target in {Target.CP_PLAN, Target.CIN_AFTER_PLAN}:
            return
        start, end = fact(plan, "cpp_start"), plan.date("cpp_end")
        assert start is not None  # noqa: S101 (a required column)
        assert end is not None  # noqa: S101 (an open plan is the target)
        opened = [f for f in (self.referral, self.strategy, self.assessment) if f is not None]
        if opened and end > min(f.on for f in opened):
            raise RejectedCaseError(
                plan,
                f"the plan from {start.on.isoformat()} to {end.isoformat()} overlaps the "
                f"current episode from {min(f.on for f in opened).isoformat()}",
            )
        self.chain.note(f"not imported (closed, no clock to keep): plan from {start.describe()}")

    def _place_cin(self) -> None:
        cin = self.latest.cin
        if cin is None or self.target in {Target.CIN_PLAN, Target.CIN_AFTER_PLAN}:
            return
        if self.target is Target.S47 and cin_open(cin):
            self.chain.note(
                f"the child in need plan in list 6 ({cin.where}) gave way to the section 47 "
                "enquiry: not imported"
            )
            return
        closed = cin.date("cin_closure")
        status = cin.text("case_status")
        if status == CaseStatus.CLOSED or closed is not None:
            opened = self._stage_start() or self.referral
            if closed is None or (opened is not None and closed >= opened.on):
                raise RejectedCaseError(
                    cin,
                    f"list 6 shows the episode closed, but the case is open at {self.target}",
                )
            self.chain.note(f"not imported (closed episode): list 6 at {cin.where}")

    # Events ---------------------------------------------------------------------------

    def _start(self) -> Fact:
        """The referral: list 3, else list 6's CIN Start Date, else the earliest known date."""
        if self.referral is not None:
            return self.referral
        path = [f for f in (self.assessment, self.strategy, self.plan) if f is not None]
        cin_start = fact(self.latest.cin, "cin_start")
        if cin_start is not None and all(cin_start.on <= f.on for f in path):
            self.chain.note(
                f"referral_received dated on {cin_start.describe()}: in the CIN census the "
                "episode starts on the referral date, and list 3 has no referral"
            )
            return cin_start
        candidates = path or [f for f in (cin_start,) if f is not None]
        if not candidates:
            raise RejectedCaseError(
                self.latest.rows()[0], "no date in the lists says when this episode began"
            )
        return min(candidates, key=lambda f: f.on)

    def _add_events(self) -> None:
        start = self._start()
        if start is self.referral or start.field == "cin_start":
            self.chain.add("referral_received", start)
        else:
            self.chain.add("referral_received", start, why="list 3 has no referral for the child")
        if self.target is Target.REFERRAL:
            return
        self._add_decision(start)
        self._add_s47()
        authorised = fact(self.latest.assessment, "assessment_authorised")
        if self.assessment is not None and authorised is not None:
            self.chain.add("assessment_completed", authorised)
        self._add_plan()
        self._add_cin()

    def _add_decision(self, start: Fact) -> None:
        assessment, strategy = self.assessment, self.strategy
        undated = "the lists do not date the decision on the referral"
        if strategy is not None and (assessment is None or strategy.on <= assessment.on):
            if assessment is not None:
                self.chain.add("referral_decision", strategy, "strategy_discussion", why=undated)
            else:
                self.chain.add(
                    "significant_harm_concern",
                    strategy,
                    why=f"{undated}; list 4 has no assessment, so none is started",
                )
        elif assessment is not None:
            self.chain.add("referral_decision", assessment, "assessment", why=undated)
            concern = strategy or self.plan
            if concern is not None:
                self.chain.add(
                    "significant_harm_concern",
                    concern,
                    why="the concern that led to the strategy discussion is not dated",
                )
        elif self.plan is not None:
            self.chain.add(
                "significant_harm_concern",
                self.plan,
                why=f"{undated}; lists 4 and 5 have no assessment or enquiry for this plan",
            )
        else:
            # A child in need plan with no dated assessment: the plan implies one.
            self.chain.add("referral_decision", start, "assessment", why=undated)

    def _add_s47(self) -> None:
        strategy = self.strategy
        if strategy is not None:
            self.chain.add("strategy_discussion_held", strategy, "s47")
            row = strategy.row
            conference = fact(row, "icpc_date")
            if self.plan is not None:
                return
            if conference is not None:
                outcome = "cp_plan" if row.flag("icpc_plan") else "no_plan"
                self.chain.add("icpc_held", conference, outcome)
            elif row.flag("icpc_not_required"):
                self.chain.add(
                    "s47_concluded",
                    strategy,
                    "not_substantiated",
                    why="list 5 says no conference was needed but does not date the end of "
                    "the enquiry",
                )
        elif self.plan is not None:
            self.chain.add(
                "strategy_discussion_held",
                self.plan,
                "s47",
                why="list 5 has no enquiry for this plan",
            )

    def _add_plan(self) -> None:
        if self.plan is None:
            return
        self.chain.add("icpc_held", self.plan, "cp_plan")
        plan_row = self.latest.plan
        if plan_row is None or plan_row is not self.plan.row:
            self.chain.note(
                f"list 7 has no row for the plan from {self.plan.describe()}: no visit or "
                "review conference is recorded"
            )
            return
        visit, review = fact(plan_row, "last_visit"), fact(plan_row, "latest_review")
        end = fact(plan_row, "cpp_end")
        if visit is not None:
            self.chain.add("cp_visit", visit)
        if end is None:
            if review is not None:
                self.chain.add("rcpc_held", review, "continue")
            return
        if review is not None and review.on == end.on:
            self.chain.add("rcpc_held", review, "end_step_down_cin")
            return
        if review is not None:
            self.chain.add("rcpc_held", review, "continue")
        self.chain.add("cp_plan_ended", end, "step_down_cin")

    def _add_cin(self) -> None:
        if self.target is not Target.CIN_PLAN:
            return
        cin = self.latest.cin
        assert cin is not None  # noqa: S101 (the target's row)
        recorded = fact(cin, "cin_plan_start")
        if self.assessment is None and self.strategy is None:
            on = recorded or self._latest_known()
            self.chain.add(
                "assessment_completed",
                on,
                why="list 4 has no assessment, but a child in need plan follows one",
            )
        if recorded is not None:
            self.chain.add("cin_plan_started", recorded)
            return
        self.chain.add(
            "cin_plan_started",
            self._latest_known(),
            why="Annex A list 6 does not date the plan; its review clock runs from this date",
        )

    def _latest_known(self) -> Fact:
        """The latest recorded date on the path: the nearest to a plan the lists do not date."""
        candidates = [
            f
            for f in (
                self.referral,
                fact(self.latest.cin, "cin_start"),
                self.assessment,
                fact(self.latest.assessment, "assessment_authorised") if self.assessment else None,
                self.strategy,
                fact(self.strategy.row, "icpc_date") if self.strategy else None,
            )
            if f is not None
        ]
        return max(candidates, key=lambda f: f.on)
