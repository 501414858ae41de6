"""The Caseclock worker: the one place that wires settings, logging, database and Temporal.

Run it with ``python -m worker`` (or ``caseclock worker``). It serves the case workflow and
its activities on the task queue in the settings until it receives SIGINT or SIGTERM.
"""

import asyncio
import signal
import sys
from datetime import timedelta

import httpx
import structlog
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.calendar_activities import build_calendar
from activities.case_activities import NotifyActivities, ReadModelActivities
from activities.sweep_activities import StepActivities, SweepActivities, wake_sweep
from caseclock.bytecode import cache_bytecode
from caseclock.codec import data_converter
from caseclock.db.alert_plan import AlertPlan
from caseclock.db.engine import create_engine_and_sessions
from caseclock.db.migrate import upgrade_database_async
from caseclock.db.read_model import ReadModel
from caseclock.db.step_writer import step_writer_for
from caseclock.directory import Directory
from caseclock.gc_pauses import collect_less_often, report_long_pauses
from caseclock.logging import configure_logging
from caseclock.notify.email import EmailSender
from caseclock.notify.webhook import WebhookSender
from caseclock.settings import Settings
from workflows.case import CaseWorkflow
from workflows.sweep import AlertSweepWorkflow

# A claim on a delivery outlives one activity attempt (30 s), so a retry after a crash
# waits for it to lapse rather than sending while the first attempt might still finish.
DELIVERY_CLAIM_LEASE = timedelta(seconds=45)
WORKFLOWS = [CaseWorkflow, AlertSweepWorkflow]


async def connect(settings: Settings) -> Client:
    """A Temporal client that encrypts payloads with the configured keys."""
    return await Client.connect(
        settings.temporal.address,
        namespace=settings.temporal.namespace,
        data_converter=data_converter(settings.encryption),
    )


def build_worker(
    settings: Settings,
    client: Client,
    read_model: ReadModel,
    directory: Directory,
    plan: AlertPlan,
    http: httpx.AsyncClient,
) -> Worker:
    """The worker with the case and sweep workflows and every activity, wired together."""
    records = ReadModelActivities(read_model)
    notify = NotifyActivities(
        read_model,
        directory,
        EmailSender(settings.smtp),
        WebhookSender(http, settings.webhook),
        settings.api.public_url,
    )
    steps = StepActivities(read_model, plan)
    sweep = SweepActivities(plan, notify.delivery)
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=WORKFLOWS,
        activities=[
            records.record_case_opened,
            records.record_case_closed,
            records.record_allocation,
            records.record_actions,
            notify.notify_escalation,
            notify.notify_alerts,
            steps.record_step,
            sweep.sweep_due_alerts,
            build_calendar,
        ],
        max_cached_workflows=settings.temporal.max_cached_workflows,
        workflow_runner=workflow_runner(settings),
    )


def workflow_runner(settings: Settings) -> WorkflowRunner:
    """Outside the sandbox unless the settings ask for it (see ``TemporalSettings``)."""
    if not settings.temporal.workflow_sandbox:
        return UnsandboxedWorkflowRunner()
    # The sandbox imports these for every workflow run: compile them once.
    cache_bytecode(sys.modules[workflow.__module__] for workflow in WORKFLOWS)
    return SandboxedWorkflowRunner()


async def run(settings: Settings) -> None:
    """Run the worker until SIGINT or SIGTERM, then shut down gracefully."""
    log = structlog.get_logger()
    await upgrade_database_async(settings.database.url)
    engine, sessions = create_engine_and_sessions(settings.database)
    steps = step_writer_for(settings.database.url, sessions)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with httpx.AsyncClient() as http:
            read_model = ReadModel(sessions, claim_lease=DELIVERY_CLAIM_LEASE, step_writer=steps)
            worker = build_worker(
                settings, client, read_model, Directory(sessions), AlertPlan(sessions), http
            )
            async with worker:
                # Alerts planned while no worker ran are delivered now, not at the next plan.
                await wake_sweep(client, settings.temporal.task_queue)
                log.info(
                    "worker running",
                    task_queue=settings.temporal.task_queue,
                    temporal=settings.temporal.address,
                )
                await stop.wait()
                log.info("worker stopping")
    finally:
        await steps.close()
        await engine.dispose()


def main() -> None:
    """Entry point: read settings once, configure logging once, run."""
    settings = Settings()
    configure_logging(settings.log_level)
    report_long_pauses()
    collect_less_often()
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
