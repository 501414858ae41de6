"""What the API and the CLI do to cases: start, record, read and acknowledge, with audit.

Both entry points call these methods, so a case started from the command line is checked,
recorded and audited exactly as one started over HTTP. Changes go to Temporal through
``caseclock.cases`` (the one path, which runs the core's checks before anything durable
happens); reads come from the read model. Access control is the caller's business: by the
time a method here runs, the caller has been allowed to do it.

Audit rows carry codes and references only: never an event's data fields or an
acknowledgement's note, which may describe a child.
"""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from caseclock.cases import open_case, record_event
from caseclock.core.events import CaseEvent, EventRejectedError
from caseclock.db import UnknownCaseError, UnknownEscalationError
from caseclock.db.deliveries import utc_now
from caseclock.db.oversight import EventView, Oversight, StageEntryView
from caseclock.db.read_model import ReadModel
from caseclock.db.views import CaseView, ClockView, EscalationView
from caseclock.definition.schema import Definition
from workflows.case import CaseWorkflow
from workflows.case_types import Allocation, RecordEventResult, workflow_id_for

# How long starting a case waits for the worker to record it, so that a caller can read
# the case as soon as the start returns.
RECORDED_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.05
MET = frozenset({"met", "met_late"})


class UnknownDefinitionError(LookupError):
    """No loaded definition has this ``id@version``."""

    def __init__(self, key: str, known: list[str]) -> None:
        super().__init__(f"no definition {key!r}; known: {', '.join(known) or 'none'}")
        self.key = key
        self.known = known


class CaseConflictError(Exception):
    """The request contradicts the case as it stands (already open, or closed)."""

    def __init__(self, case_ref: str, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.case_ref = case_ref
        self.kind = kind
        self.reason = reason


class DuplicateEventError(EventRejectedError):
    """An event id already used on the case for other facts: nothing was changed."""


@dataclass(frozen=True)
class StartResult:
    """What starting a case did: ``started`` is False when the same start was repeated."""

    case_ref: str
    started: bool
    recorded: bool


class CaseRecord(BaseModel):
    """Everything the read model holds about a case, for a person or a case system."""

    model_config = ConfigDict(frozen=True)

    case: CaseView
    stage_history: list[StageEntryView]
    events: list[EventView]
    open_clocks: list[ClockView]
    met_clocks: list[ClockView]
    cancelled_clocks: list[ClockView]
    escalations: list[EscalationView]


class Casework:
    """Start cases, record events, read cases and acknowledge escalations, auditing each.

    Args:
        client: A Temporal client with Caseclock's data converter; None for a caller that
            only reads and acknowledges (those need only the read model).
        task_queue: The worker's task queue.
        read_model: The read model (and its audit log).
        oversight: The read-model queries for case history.
        definitions: Loaded definitions by ``id@version``.
        now: The clock, replaceable in tests.

    """

    def __init__(
        self,
        client: Client | None,
        task_queue: str,
        read_model: ReadModel,
        oversight: Oversight,
        definitions: Mapping[str, Definition],
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._task_queue = task_queue
        self._read_model = read_model
        self._oversight = oversight
        self._definitions = definitions
        self._now = now

    @property
    def _temporal(self) -> Client:
        if self._client is None:
            raise RuntimeError("this Casework was built without a Temporal client")
        return self._client

    async def audit(self, actor: str, action: str, case_ref: str | None, **detail: Any) -> None:
        """Append an audit row (codes and references only)."""
        await self._read_model.write_audit(actor, action, case_ref, detail)

    def definition(self, key: str) -> Definition:
        """A loaded definition by ``id@version``.

        Raises:
            UnknownDefinitionError: If none has that key.

        """
        found = self._definitions.get(key)
        if found is None:
            raise UnknownDefinitionError(key, sorted(self._definitions))
        return found

    async def case(self, case_ref: str) -> CaseView:
        """The case as recorded, waiting briefly if Temporal has it and the worker lags.

        Raises:
            UnknownCaseError: If neither the read model nor Temporal knows the case.

        """
        found = await self._read_model.get_case(case_ref)
        if found is None and self._client is not None and await self._workflow_exists(case_ref):
            found = await self._wait_for_case(case_ref)
        if found is None:
            raise UnknownCaseError(case_ref)
        return found

    async def start(
        self,
        actor: str,
        case_ref: str,
        definition_key: str,
        allocation: Allocation,
        referral: CaseEvent,
    ) -> StartResult:
        """Start a case from its referral; repeating the same start changes nothing.

        Raises:
            UnknownDefinitionError: If the definition is not loaded.
            CaseConflictError: If the case is already open (or was closed) with another
                referral.
            EventRejectedError: If the core refuses the referral (nothing is started).

        """
        definition = self.definition(definition_key)
        existing = await self._read_model.get_case(case_ref)
        if existing is None and await self._workflow_exists(case_ref):
            existing = await self._wait_for_case(case_ref)
        if existing is not None:
            recorded = await self._oversight.event_ids(case_ref, [referral.event_id])
            if recorded.get(referral.event_id) == referral.type and existing.closed_on is None:
                return StartResult(case_ref, started=False, recorded=True)
            raise CaseConflictError(case_ref, *_conflict(existing))
        try:
            await open_case(
                self._temporal,
                self._task_queue,
                definition,
                case_ref,
                allocation,
                [referral],
                self._now(),
            )
        except EventRejectedError as error:
            await self.audit(
                actor,
                "case.start.rejected",
                case_ref,
                fields=[r.field for r in error.rejections],
            )
            raise
        await self.audit(
            actor,
            "case.start",
            case_ref,
            definition=definition_key,
            team=allocation.team,
            worker=allocation.worker,
            event_id=referral.event_id,
            event_type=referral.type,
        )
        recorded_case = await self._wait_for_case(case_ref, referral.event_id)
        return StartResult(case_ref, started=True, recorded=recorded_case is not None)

    async def record(self, actor: str, case: CaseView, event: CaseEvent) -> RecordEventResult:
        """Record an event on an open case; a resend of the same event changes nothing.

        Raises:
            CaseConflictError: If the case is closed.
            DuplicateEventError: If the event id was used for other facts.
            EventRejectedError: If the core refuses the event now, with every reason.

        """
        if case.closed_on is not None:
            raise CaseConflictError(case.case_ref, *_conflict(case))
        try:
            result = await record_event(self._temporal, case.case_ref, event)
        except EventRejectedError as error:
            await self.audit(
                actor,
                "case.event.rejected",
                case.case_ref,
                event_id=event.event_id,
                event_type=event.type,
                fields=[r.field for r in error.rejections],
            )
            if any(r.field == "event_id" for r in error.rejections):
                raise DuplicateEventError(error.event_type, error.rejections) from error
            raise
        except RPCError as error:
            # The workflow finished (the case closed) after the read model was read.
            if error.status is RPCStatusCode.NOT_FOUND:
                reason = f"case {case.case_ref} is closed; record a new referral as a new case"
                raise CaseConflictError(case.case_ref, "case-closed", reason) from error
            raise
        await self.audit(
            actor,
            "case.event",
            case.case_ref,
            event_id=event.event_id,
            event_type=event.type,
            duplicate=result.duplicate,
        )
        return result

    async def read(self, actor: str, case: CaseView) -> CaseRecord:
        """Everything recorded about a case; the read is audited."""
        clocks = await self._read_model.list_clocks(case.case_ref)
        record = CaseRecord(
            case=case,
            stage_history=await self._oversight.stage_history(case.case_ref),
            events=await self._oversight.events(case.case_ref),
            open_clocks=[c for c in clocks if c.status.value == "running"],
            met_clocks=[c for c in clocks if c.status.value in MET],
            cancelled_clocks=[c for c in clocks if c.status.value == "cancelled"],
            escalations=await self._oversight.case_escalations(case.case_ref),
        )
        await self.audit(actor, "case.read", case.case_ref)
        return record

    async def escalation(self, key: str) -> EscalationView:
        """One escalation by key.

        Raises:
            UnknownEscalationError: If no escalation has this key.

        """
        found = await self._oversight.escalation(key)
        if found is None:
            raise UnknownEscalationError(key)
        return found

    async def acknowledge(
        self, actor: str, escalation: EscalationView, staff_code: str, note: str
    ) -> EscalationView:
        """Record management oversight of an alert: who saw it, when, and what they did.

        The first acknowledgement stands; a later one changes nothing and says so.
        """
        result = await self._read_model.acknowledge(escalation.key, staff_code, note)
        await self.audit(
            actor,
            "escalation.acknowledge",
            escalation.case_ref,
            key=escalation.key,
            level=escalation.level,
            acknowledged_by=staff_code,
            already_acknowledged=result.already_acknowledged,
        )
        return result

    async def _workflow_exists(self, case_ref: str) -> bool:
        handle = self._temporal.get_workflow_handle_for(CaseWorkflow.run, workflow_id_for(case_ref))
        try:
            await handle.describe()
        except RPCError as error:
            if error.status is RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    async def _wait_for_case(self, case_ref: str, event_id: str | None = None) -> CaseView | None:
        """The case once the worker has recorded it (and this event), or None on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECORDED_WAIT_SECONDS
        while True:
            case = await self._read_model.get_case(case_ref)
            if case is not None and (
                event_id is None or await self._oversight.event_ids(case_ref, [event_id])
            ):
                return case
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(_POLL_SECONDS)


def _conflict(case: CaseView) -> tuple[str, str]:
    if case.closed_on is not None:
        return (
            "case-closed",
            f"case {case.case_ref} closed on {case.closed_on.isoformat()}; "
            "record a new referral as a new case with a new reference",
        )
    return (
        "case-already-open",
        f"case {case.case_ref} is already open with another referral; "
        f"record further events with POST /api/v1/cases/{case.case_ref}/events",
    )
