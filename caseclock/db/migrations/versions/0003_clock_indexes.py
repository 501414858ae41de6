"""Clock indexes for the read-model queries: running clocks by team, closed clocks by date.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written by hand to match the indexes declared on ``caseclock.db.models.Clock``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    """Add the partial index on running clocks and the closing-date index for leaders."""
    op.create_index(
        "ix_clocks_running_team_due",
        "clocks",
        ["team_code", "due_at"],
        unique=False,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    op.create_index(
        "ix_clocks_clock_closed",
        "clocks",
        ["clock_id", "closed_on", "status", "team_code"],
        unique=False,
    )


def downgrade() -> None:
    """Drop both indexes."""
    op.drop_index("ix_clocks_clock_closed", table_name="clocks")
    op.drop_index("ix_clocks_running_team_due", table_name="clocks")
