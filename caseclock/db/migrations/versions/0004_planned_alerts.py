"""Planned alerts: what each case's clocks will raise, for the escalation sweep to deliver.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Written by hand from ``caseclock.db.models.PlannedAlert``, ``CasePlanVersion`` and
``AlertSweepState``, with the column types spelled out so the migration does not change
when the models do. ``tests/test_read_model.py`` checks that the models and migrations agree.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REF = sa.String(length=128)


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the planned alerts, the plan versions and the sweep's one-row state."""
    op.create_table(
        "planned_alerts",
        sa.Column("key", REF, nullable=False),
        sa.Column("case_ref", REF, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fire_at", _timestamp(), nullable=False),
        sa.Column("due_at", _timestamp(), nullable=False),
        sa.Column("action", _json(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_ref"], ["cases.case_ref"], name=op.f("fk_planned_alerts_case_ref_cases")
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_planned_alerts")),
    )
    op.create_index("ix_planned_alerts_status_due_at", "planned_alerts", ["status", "due_at"])
    op.create_index("ix_planned_alerts_case_ref", "planned_alerts", ["case_ref"])
    op.create_table(
        "case_plan_versions",
        sa.Column("case_ref", REF, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_ref"], ["cases.case_ref"], name=op.f("fk_case_plan_versions_case_ref_cases")
        ),
        sa.PrimaryKeyConstraint("case_ref", name=op.f("pk_case_plan_versions")),
    )
    op.create_table(
        "alert_sweep",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("next_wake_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_sweep")),
    )


def downgrade() -> None:
    """Drop the sweep's tables."""
    op.drop_table("alert_sweep")
    op.drop_table("case_plan_versions")
    op.drop_index("ix_planned_alerts_case_ref", table_name="planned_alerts")
    op.drop_index("ix_planned_alerts_status_due_at", table_name="planned_alerts")
    op.drop_table("planned_alerts")
