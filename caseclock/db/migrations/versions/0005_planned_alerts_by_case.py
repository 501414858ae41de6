"""Planned alerts indexed by case, status and firing time, for replacing a case's plan.

Replacing a case's plan deletes its future planned rows (``case_ref = ? AND status =
'planned' AND fire_at > ?``). With only the one-column index on ``case_ref``, SQLite's
planner (which has no statistics unless ANALYZE has run) preferred the sweep's
``(status, due_at)`` index, and so walked every planned alert of every case for each step:
a step's cost grew with the number of open cases. This index answers the delete on its own
and replaces the one-column index, which it covers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

Written by hand to match the indexes declared on ``caseclock.db.models.PlannedAlert``.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Index planned alerts by (case_ref, status, fire_at); drop the case_ref-only index."""
    op.create_index(
        "ix_planned_alerts_case_status_fire",
        "planned_alerts",
        ["case_ref", "status", "fire_at"],
        unique=False,
    )
    op.drop_index("ix_planned_alerts_case_ref", table_name="planned_alerts")


def downgrade() -> None:
    """Put back the case_ref-only index."""
    op.create_index("ix_planned_alerts_case_ref", "planned_alerts", ["case_ref"], unique=False)
    op.drop_index("ix_planned_alerts_case_status_fire", table_name="planned_alerts")
