"""AlertSweepWorkflow: one durable loop that delivers every planned alert when it falls due.

Cases plan their alerts in the read model (``caseclock.core.forecast``); this workflow
sleeps until the earliest is due, delivers everything due then in batches (one activity),
and sleeps again. A plan due sooner than the sweep's next look wakes it by signal. One
sweep per task queue (workflow id ``caseclock/alert-sweep/<task queue>``), started by the first plan
that needs it and by the worker at start-up.

Ten thousand alerts due at nine on a Monday after a bank holiday are one wake-up and a few
batched transactions here, not ten thousand workflow tasks.
"""

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.sweep_activities import (
        SWEEP_WORKFLOW,
        WAKE_SIGNAL,
        SweepRequest,
        SweepResult,
    )

# Long enough for a storm of tens of thousands of alerts; the heartbeat says it is alive.
SWEEP_TIMEOUT = timedelta(minutes=30)
SWEEP_HEARTBEAT = timedelta(minutes=1)
SWEEP_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# Continue as new well before the history grows long: each look is about ten events.
LOOKS_PER_RUN = 500


@workflow.defn(name=SWEEP_WORKFLOW)
class AlertSweepWorkflow:
    """Deliver planned alerts as they fall due, for as long as the engine runs."""

    def __init__(self) -> None:
        self._woken = False

    @workflow.run
    async def run(self) -> None:
        """Look, deliver, sleep until the next alert is due or a plan wakes us; repeat."""
        for _ in range(LOOKS_PER_RUN):
            # Cleared before looking: a wake that arrives while delivering means look again.
            self._woken = False
            result: SweepResult = await workflow.execute_activity(
                "sweep_due_alerts",
                SweepRequest(now=workflow.now()),
                result_type=SweepResult,
                start_to_close_timeout=SWEEP_TIMEOUT,
                heartbeat_timeout=SWEEP_HEARTBEAT,
                retry_policy=SWEEP_RETRY,
            )
            sleep = result.next_wake - workflow.now()
            if sleep > timedelta(0) and not self._woken:
                with contextlib.suppress(TimeoutError):  # a timeout means: time to look
                    await workflow.wait_condition(lambda: self._woken, timeout=sleep)
            if workflow.info().is_continue_as_new_suggested():
                break
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new()

    @workflow.signal(name=WAKE_SIGNAL)
    def wake(self) -> None:
        """A plan falls due before the next look: look now."""
        self._woken = True
