"""Plain-text reports of a plan and of an applied import, for the console and documents."""

from collections import Counter

from caseclock.importer.models import (
    CaseOutcome,
    ImportPlan,
    ImportResult,
    Severity,
)


def plan_report(plan: ImportPlan, show_cases: bool = False, show_notes: bool = False) -> str:
    """The dry run: files, cases by stage, clocks due and overdue, every rejected row."""
    summary = plan.summary()
    lines = [
        f"Import of {len(plan.files)} file(s) as at {plan.today.isoformat()} with definition "
        f"{plan.definition.id} {plan.definition.version}",
    ]
    for file in plan.files:
        which = f"list {file.list_number.value}" if file.list_number else "unrecognised"
        lines.append(
            f"  {file.source}: {which}, {file.rows} row(s), "
            f"{file.columns_read} of {file.columns_total} column(s) read"
        )
    stages = ", ".join(f"{stage} {count}" for stage, count in summary.cases_by_stage.items())
    lines += [
        f"Cases to open: {summary.cases}" + (f" ({stages})" if stages else ""),
        f"Cases with nothing open (not opened): {summary.cases_skipped}",
        f"Cases rejected (nothing of them applied): {summary.cases_rejected}",
        f"Clocks running: {summary.clocks_running}; due soon {summary.clocks_due_soon}; "
        f"overdue {summary.clocks_overdue}, of which escalated beyond the first overdue "
        f"alert {summary.clocks_escalated}",
    ]
    if summary.clocks_undated_overdue:
        undated = Counter(
            clock.clock_id
            for case in plan.cases
            for clock in case.clocks
            if clock.undated_by_lists and clock.standing in {"overdue", "escalated"}
        )
        detail = ", ".join(f"{clock} {count}" for clock, count in sorted(undated.items()))
        lines.append(
            f"  of the overdue, {summary.clocks_undated_overdue} are clocks the lists cannot "
            f"show as met ({detail}): check and record the latest meeting after the import"
        )
    late = Counter(
        clock.clock_id
        for case in plan.cases
        for clock in case.clocks
        if clock.standing in {"overdue", "escalated"}
    )
    if late:
        lines.append(
            "  overdue by clock: " + ", ".join(f"{c} {n}" for c, n in sorted(late.items()))
        )
    lines.append(f"Rows not supported by the definition yet: {summary.rows_unsupported}")
    unsupported = Counter(
        issue.source for issue in plan.issues if issue.severity is Severity.UNSUPPORTED
    )
    lines += [f"  {source}: {count}" for source, count in sorted(unsupported.items())]
    rejected = plan.rejected_rows
    lines.append(f"Rows rejected: {len(rejected)}")
    lines += [f"  {issue}" for issue in rejected]
    if show_cases:
        lines.append("Cases:")
        for case in plan.cases:
            lines.append(
                f"  {case.case_ref} team {case.allocation.team} worker "
                f"{case.allocation.worker or '-'}: {case.stages.get('main')}"
            )
            for clock in case.clocks:
                level = f" ({clock.level_name})" if clock.level_name else ""
                lines.append(
                    f"    {clock.clock_id} #{clock.occurrence} from {clock.start_date} due "
                    f"{clock.due_date}: {clock.standing}{level}"
                )
            if show_notes:
                lines += [f"    note: {note}" for note in case.notes]
        for skipped in plan.skipped:
            lines.append(f"  {skipped.case_ref}: not opened, {skipped.reason}")
    if show_notes:
        lines += [f"  {issue}" for issue in plan.issues if issue.severity is Severity.NOTE]
    return "\n".join(lines)


def result_report(result: ImportResult) -> str:
    """What applying did: opened, already open, already closed, failed (with reasons)."""
    lines = [
        f"Opened {result.opened} case(s); {result.already_open} already open (unchanged); "
        f"{result.count(CaseOutcome.ALREADY_CLOSED)} already closed (not reopened); "
        f"{result.failed} failed",
    ]
    lines += [
        f"  {case.case_ref}: {case.outcome.value}: {case.reason}"
        for case in result.cases
        if case.outcome in {CaseOutcome.FAILED, CaseOutcome.ALREADY_CLOSED}
    ]
    return "\n".join(lines)
