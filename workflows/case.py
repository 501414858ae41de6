"""CaseWorkflow: the durable shell around the pure process core, one workflow per case.

Events arrive as updates, checked by a validator before anything changes. The workflow
sleeps on one timer until the next alert falls due, runs the core's actions as activities
(a step's facts and plan as a local activity, in the workflow task that made them), and
continues as new before its history grows large. All decisions are the core's; this
module only moves data between Temporal and the core.
"""

import asyncio
import contextlib
from datetime import UTC, date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    # Pure, deterministic modules (the core and its types) are passed through so the
    # sandbox does not re-import pydantic for every workflow run.
    from activities.calendar_activities import CalendarRequest, build_calendar
    from activities.case_activities import (
        AllocationInput,
        CaseClosedInput,
        CaseOpenedInput,
        NotifyAlertsInput,
        NotifyEscalationInput,
        RecordActionsInput,
    )
    from activities.sweep_activities import AlertPlanInput, RecordStepInput
    from caseclock.calendar import WorkingCalendar, local_date
    from caseclock.core.actions import Action, NotifyAction
    from caseclock.core.engine import (
        apply_event,
        due_alerts,
        next_wakeup,
        start_case,
        validate_event,
    )
    from caseclock.core.events import EventRejectedError
    from caseclock.core.forecast import advance, forecast, without_alerts
    from caseclock.search_attributes import STAGES_ATTRIBUTE, TEAM_ATTRIBUTE
    from workflows.case_types import (
        Allocation,
        CaseSummary,
        CaseWorkflowInput,
        CaseWorkflowResult,
        RecordEventInput,
        RecordEventResult,
    )

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A case's calendar is rebuilt, when it continues as new, once it covers fewer years ahead
# than the minimum; the rebuilt one covers the full span.
CALENDAR_YEARS_AHEAD_MIN = 3
CALENDAR_YEARS_AHEAD = 8
# Retry for as long as it takes: an alert must not be dropped because SMTP was down.
ACTIVITY_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=2))
# Added after 2026.1 histories were recorded: alerts are planned in the read model and
# delivered by the sweep (workflows/sweep.py) instead of by a timer and an activity per
# alert here. Histories without this marker keep the per-alert path below.
ALERTS_BY_SWEEP = "alerts-by-sweep"
# Added after 2026.2 histories were recorded: a step (the case's facts and plan, about a
# millisecond's write to the read model) runs as a local activity inside the workflow task
# that made it, so an event costs one workflow task and no activity task, and the step's
# input stays out of history. Histories without this marker keep the step as an activity.
STEPS_AS_LOCAL_ACTIVITIES = "steps-as-local-activities"


def rejected(error: EventRejectedError) -> ApplicationError:
    """The core's rejection as a non-retryable error whose details name each field."""
    details = [rejection.model_dump() for rejection in error.rejections]
    return ApplicationError(str(error), *details, type="EventRejected", non_retryable=True)


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
    """One case: its clocks, stages and escalations, kept durably for as long as it is open."""

    @workflow.init
    def __init__(self, case: CaseWorkflowInput) -> None:
        self._case = case
        self._state = case.state or start_case(case.definition, case.case_ref)
        self._allocation = case.allocation
        self._queue: list[Action] = []
        self._queued = 0
        self._done = 0
        # Alerts by sweep (memoised so a query can read it without a command).
        self._sweep: bool | None = None
        self._planned_through = case.planned_through
        self._replan_at = case.replan_at
        self._pending_plan: AlertPlanInput | None = None
        self._plan_written: list[tuple[str, datetime]] | None = None
        self._plans = 0
        # Applied here, before any update is validated, so the case's first event is in
        # place when the next one arrives. The starter checked them with the same core, so
        # a rejection here is a bug and fails the workflow task visibly. (Continuing as new
        # clears them; reopening a closed case passes its last state and new events.)
        for event in case.initial_events:
            outcome = apply_event(
                case.definition, self._state, event, case.calendar, workflow.now()
            )
            self._state = outcome.state
            self._enqueue(list(outcome.actions))

    @workflow.run
    async def run(self, case: CaseWorkflowInput) -> CaseWorkflowResult:
        """Keep the case's clocks until it closes, continuing as new when history is long."""
        if case.state is None or case.initial_events:
            if self._by_sweep():
                # Searchable by stage from the start; then opened, its first facts and its
                # plan in one activity.
                self._publish_stages()
                self._catch_up_and_plan()
                await self._run_queue(opened=self._opened())
            else:
                await self._record_opened()
                # Added after 2026.1 histories were recorded: cases opened with their events
                # (as imports are) are searchable by stage before any update arrives.
                if workflow.patched("stages-search-attribute-on-open"):
                    self._publish_stages()
        while True:
            if self._by_sweep():
                self._catch_up_and_plan()
            else:
                self._queue_alerts()
            await self._run_queue()
            if self._finished():
                # Closed: new events are refused by the validator from here on.
                await self._record_closed()
                await self._drain()
                return CaseWorkflowResult(summary=self.summary(), state=self._state)
            if self._history_too_long():
                calendar = await self._fresh_calendar()
                await self._drain()
                # Nothing is awaited between the drain and continuing as new, so no update
                # can start in between and be cut off.
                workflow.continue_as_new(
                    case.model_copy(
                        update={
                            "state": self._state,
                            "allocation": self._allocation,
                            "calendar": calendar,
                            "runs": case.runs + 1,
                            "initial_events": [],
                            "planned_through": self._planned_through,
                            "replan_at": self._replan_at,
                        }
                    )
                )
            await self._sleep_until_next_alert()

    @workflow.update
    async def record_event(self, request: RecordEventInput) -> RecordEventResult:
        """Apply an event; returns once its facts and any alerts it caused are recorded."""
        if self._by_sweep():
            self._catch_up(workflow.now())
        try:
            outcome = apply_event(
                self._case.definition,
                self._state,
                request.event,
                self._case.calendar,
                workflow.now(),
            )
        except EventRejectedError as error:
            raise rejected(error) from error
        self._state = outcome.state
        if not outcome.duplicate:
            # A late-recorded event may start a clock whose rungs are already past.
            alerts = due_alerts(self._case.definition, self._state, workflow.now())
            self._state = alerts.state
            target = self._enqueue([*outcome.actions, *alerts.actions])
            if self._by_sweep():
                self._plan_ahead(workflow.now())
            self._publish_stages()
            await workflow.wait_condition(lambda: self._done >= target)
        return RecordEventResult(
            event_id=request.event.event_id,
            duplicate=outcome.duplicate,
            stages=self._stages(),
        )

    @record_event.validator
    def _validate_event(self, request: RecordEventInput) -> None:
        if self._finished():
            raise ApplicationError(
                f"case {self._case.case_ref} is closed; record a new referral as a new case",
                type="CaseClosed",
                non_retryable=True,
            )
        try:
            validate_event(
                self._case.definition,
                self._state,
                request.event,
                self._case.calendar,
                workflow.now(),
            )
        except EventRejectedError as error:
            raise rejected(error) from error

    @workflow.update
    async def set_allocation(self, allocation: Allocation) -> Allocation:
        """Move the case to another team or worker; later alerts go to them."""
        self._allocation = allocation
        workflow.upsert_search_attributes([TEAM_ATTRIBUTE.value_set(allocation.team)])
        await self._side_effect(
            "record_allocation",
            AllocationInput(
                case_ref=self._case.case_ref,
                team=allocation.team,
                allocated_worker=allocation.worker,
            ),
        )
        return allocation

    @set_allocation.validator
    def _validate_allocation(self, allocation: Allocation) -> None:
        if self._finished():
            raise ApplicationError(
                f"case {self._case.case_ref} is closed", type="CaseClosed", non_retryable=True
            )

    @workflow.query
    def summary(self) -> CaseSummary:
        """The case's stages, clocks and the explanation of every deadline."""
        state = self._state
        if self._sweep and self._planned_through is not None:
            # Alerts the sweep has delivered since this case last woke count as fired. A
            # query makes no commands, so it may read the wall clock (never in history).
            with workflow.unsafe.sandbox_unrestricted():
                now = max(workflow.now(), datetime.now(UTC))
            state, _ = advance(self._case.definition, state, min(now, self._planned_through))
        clocks = [occurrence.snapshot() for occurrence in state.clocks.values()]
        return CaseSummary(
            case_ref=self._case.case_ref,
            allocation=self._allocation,
            definition_id=self._case.definition.id,
            definition_version=self._case.definition.version,
            calendar_id=self._case.calendar.calendar_id,
            stages=self._stages(),
            clocks=clocks,
            next_wakeup=next_wakeup(state),
            explanations={clock.clock_id: clock.deadline.explain() for clock in clocks},
            runs=self._case.runs,
        )

    def _stages(self) -> dict[str, str]:
        return {track: state.stage for track, state in self._state.tracks.items()}

    def _publish_stages(self) -> None:
        """Set the stages search attribute: ``track:stage`` codes, never personal data."""
        codes = [f"{track}:{stage}" for track, stage in self._stages().items()]
        workflow.upsert_search_attributes([STAGES_ATTRIBUTE.value_set(codes)])

    def _finished(self) -> bool:
        closes_when = self._case.definition.closes_when
        if not closes_when or self._state.running():
            return False
        return all(self._state.tracks[t].stage in stages for t, stages in closes_when.items())

    async def _drain(self) -> None:
        """Run queued actions until no handler is running and nothing is queued."""
        while True:
            await self._run_queue()
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() or bool(self._queue)
            )
            if not self._queue and workflow.all_handlers_finished():
                return

    async def _fresh_calendar(self) -> WorkingCalendar:
        """The calendar for the next run: rebuilt when it covers too few years ahead."""
        calendar = self._case.calendar
        year = local_date(workflow.now()).year
        if calendar.last_year >= year + CALENDAR_YEARS_AHEAD_MIN:
            return calendar
        return await workflow.execute_activity(
            build_calendar,
            CalendarRequest(first_year=calendar.first_year, last_year=year + CALENDAR_YEARS_AHEAD),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    def _closed_on(self) -> date:
        """The day the last closing track reached its closed stage."""
        entered = [
            self._state.tracks[track].entered_on for track in self._case.definition.closes_when
        ]
        return max((day for day in entered if day is not None), default=local_date(workflow.now()))

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return (
            info.get_current_history_length() >= self._case.history_limit
            or info.is_continue_as_new_suggested()
        )

    def _by_sweep(self) -> bool:
        if self._sweep is None:
            self._sweep = workflow.patched(ALERTS_BY_SWEEP)
        return self._sweep

    def _catch_up(self, now: datetime) -> None:
        """Count alerts the sweep delivered from this case's plan as raised here.

        Stepping through the same instants as the plan reproduces its alerts and keys, so
        the state is what it would be had this workflow raised them itself; their record
        actions (levels fired) are written, the alerts themselves are not sent again.
        """
        if self._planned_through is None:
            return
        self._state, actions = advance(
            self._case.definition, self._state, min(now, self._planned_through)
        )
        self._enqueue(without_alerts(actions))

    def _catch_up_and_plan(self) -> None:
        """Catch up, raise any due alert the plan left out, and plan what comes next."""
        now = workflow.now()
        self._catch_up(now)
        self._queue_alerts()
        self._plan_ahead(now)

    def _plan_ahead(self, now: datetime) -> None:
        """Forecast the case's alerts; queue the plan for the read model if it changed."""
        plan = forecast(self._case.definition, self._state, now)
        self._planned_through = plan.through
        self._replan_at = plan.replan_at
        written = [(alert.key, alert.fire_at) for alert in plan.alerts]
        if written == self._plan_written:
            return
        self._plan_written = written
        self._plans += 1
        # Later plans of a case win: ordered by workflow time, then by count within it.
        version = int(now.timestamp() * 1_000_000) * 1_000 + self._plans % 1_000
        self._pending_plan = AlertPlanInput(version=version, after=now, alerts=list(plan.alerts))

    def _queue_alerts(self) -> None:
        alerts = due_alerts(self._case.definition, self._state, workflow.now())
        self._state = alerts.state
        self._enqueue(list(alerts.actions))

    def _enqueue(self, actions: list[Action]) -> int:
        self._queue.extend(actions)
        self._queued += len(actions)
        return self._queued

    async def _sleep_until_next_alert(self) -> None:
        # By sweep, the case sleeps until an event arrives, or until its plan runs out.
        wake = self._replan_at if self._by_sweep() else next_wakeup(self._state)
        timeout = None if wake is None else max(wake - workflow.now(), timedelta(0))
        if timeout == timedelta(0):
            return
        with contextlib.suppress(TimeoutError):  # a timeout means the next alert is due
            await workflow.wait_condition(lambda: bool(self._queue), timeout=timeout)

    async def _run_queue(self, opened: CaseOpenedInput | None = None) -> None:
        """Run queued actions in order: facts first, then alerts (concurrently)."""
        if self._by_sweep():
            await self._run_step(opened)
            return
        while self._queue:
            batch, self._queue = self._queue, []
            records = [action for action in batch if not isinstance(action, NotifyAction)]
            if records:
                await self._side_effect(
                    "record_actions",
                    RecordActionsInput(case_ref=self._case.case_ref, actions=records),
                )
            alerts = [action for action in batch if isinstance(action, NotifyAction)]
            await asyncio.gather(*(self._notify(alert) for alert in alerts))
            self._done += len(batch)

    async def _run_step(self, opened: CaseOpenedInput | None) -> None:
        """By sweep: one activity for the step's facts and plan, one for alerts due now."""
        while self._queue or self._pending_plan is not None or opened is not None:
            batch, self._queue = self._queue, []
            plan, self._pending_plan = self._pending_plan, None
            records = [action for action in batch if not isinstance(action, NotifyAction)]
            if records or plan is not None or opened is not None:
                await self._record_step(
                    RecordStepInput(
                        case_ref=self._case.case_ref, opened=opened, actions=records, plan=plan
                    )
                )
                opened = None
            alerts = [action for action in batch if isinstance(action, NotifyAction)]
            if alerts:
                await self._side_effect(
                    "notify_alerts",
                    NotifyAlertsInput(alerts=[self._notify_input(alert) for alert in alerts]),
                )
            self._done += len(batch)

    async def _record_step(self, step: RecordStepInput) -> None:
        """Write a step's facts and plan, retried until it succeeds, like every side effect.

        As a local activity a step that fails is retried within the workflow task (and after
        a backoff of more than a minute, on a timer); if the worker dies before the task
        completes, the task and its step run again, which the step's writes allow (events
        by id, the plan by version).
        """
        if workflow.patched(STEPS_AS_LOCAL_ACTIVITIES):
            await workflow.execute_local_activity(
                "record_step",
                step,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=ACTIVITY_RETRY,
            )
        else:
            await self._side_effect("record_step", step)

    def _notify_input(self, alert: NotifyAction) -> NotifyEscalationInput:
        return NotifyEscalationInput(
            action=alert, team=self._allocation.team, allocated_worker=self._allocation.worker
        )

    async def _notify(self, alert: NotifyAction) -> None:
        await self._side_effect("notify_escalation", self._notify_input(alert))

    async def _side_effect(self, activity: str, argument: BaseModel) -> None:
        """Run one of the case's activities, retried until it succeeds."""
        await workflow.execute_activity(
            activity,
            argument,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )

    async def _record_opened(self) -> None:
        await self._side_effect("record_case_opened", self._opened())

    def _opened(self) -> CaseOpenedInput:
        return CaseOpenedInput(
            case_ref=self._case.case_ref,
            definition_id=self._case.definition.id,
            definition_version=self._case.definition.version,
            team=self._allocation.team,
            allocated_worker=self._allocation.worker,
            opened_on=local_date(workflow.now()),
        )

    async def _record_closed(self) -> None:
        await self._side_effect(
            "record_case_closed",
            CaseClosedInput(case_ref=self._case.case_ref, closed_on=self._closed_on()),
        )
