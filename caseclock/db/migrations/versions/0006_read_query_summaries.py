"""Read queries: a covering index for My work; monthly counts of met clocks for leaders.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

Written by hand to match ``caseclock.db.models``:

- ``ix_clocks_running_team_due_cover`` replaces ``ix_clocks_running_team_due``: the same
  running clocks by team and due instant, with the clock's key and the levels fired, so
  that My work counts and orders a team's list from the index alone;
- ``closed_clock_months`` counts, by clock, month closed and team, the occurrences met on
  time and late: what leaders' timeliness measures read, instead of every clock closed in
  the period. Triggers on ``clocks`` keep it exact in the transaction of every write (on
  PostgreSQL under the clock row's lock, with the row's old and new values): a clock met,
  reopened, closed on another day by a late-recorded event, moved to another team with
  its case, or deleted takes its count with it. It is filled from the clocks already
  there;
- ``ix_escalations_created_at``: the escalations raised in a leader's period, rather than
  every escalation (or, with few escalations, every case: SQLite's plan) read to find them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")
CODE = sa.String(length=64)
CLOSED = "('met', 'met_late')"
# What makes a row count, and the columns that place it, as SQL over OLD or NEW.
_COUNTS = "{row}.status IN " + CLOSED + " AND {row}.closed_on IS NOT NULL"
PLACING = ("clock_id", "team_code", "status", "closed_on")


def _moved(differs: str) -> str:
    """Whether an update changed what places the row (``differs``: the dialect's words)."""
    return " OR ".join(f"OLD.{column} {differs} NEW.{column}" for column in PLACING)


_SQLITE_MONTH = "substr({row}.closed_on, 1, 7)"  # dates are ISO text on SQLite
_POSTGRES_MONTH = "to_char({row}.closed_on::timestamp, 'YYYY-MM')"


def _add(row: str, month: str, when: str = "") -> str:
    """Count ``row`` (OLD or NEW) in its month: a row is created or its counts go up."""
    month = month.format(row=row)
    return (
        "INSERT INTO closed_clock_months (clock_id, month, team_code, met, met_late) "
        f"SELECT {row}.clock_id, {month}, {row}.team_code, "
        f"CASE WHEN {row}.status = 'met' THEN 1 ELSE 0 END, "
        f"CASE WHEN {row}.status = 'met_late' THEN 1 ELSE 0 END "
        f"WHERE {when or 'true'} "
        "ON CONFLICT (clock_id, month, team_code) DO UPDATE SET "
        "met = closed_clock_months.met + excluded.met, "
        "met_late = closed_clock_months.met_late + excluded.met_late"
    )


def _remove(row: str, month: str, when: str = "") -> str:
    """Stop counting ``row`` (OLD) in its month."""
    month = month.format(row=row)
    return (
        "UPDATE closed_clock_months SET "  # noqa: S608 (this module's constants only)
        f"met = met - CASE WHEN {row}.status = 'met' THEN 1 ELSE 0 END, "
        f"met_late = met_late - CASE WHEN {row}.status = 'met_late' THEN 1 ELSE 0 END "
        f"WHERE clock_id = {row}.clock_id AND month = {month} "
        f"AND team_code = {row}.team_code" + (f" AND {when}" if when else "")
    )


def _sqlite_triggers() -> list[str]:
    old, new = _COUNTS.format(row="OLD"), _COUNTS.format(row="NEW")
    month = _SQLITE_MONTH
    return [
        "CREATE TRIGGER tr_clocks_months_insert AFTER INSERT ON clocks "
        f"WHEN {new} BEGIN {_add('NEW', month)}; END",
        "CREATE TRIGGER tr_clocks_months_delete AFTER DELETE ON clocks "
        f"WHEN {old} BEGIN {_remove('OLD', month)}; END",
        "CREATE TRIGGER tr_clocks_months_update "
        f"AFTER UPDATE OF {', '.join(PLACING)} ON clocks "
        f"WHEN (({old}) OR ({new})) AND ({_moved('IS NOT')}) BEGIN "
        f"{_remove('OLD', month, old)}; {_add('NEW', month, new)}; END",
    ]


def _postgres_triggers() -> list[str]:
    old, new = _COUNTS.format(row="OLD"), _COUNTS.format(row="NEW")
    month = _POSTGRES_MONTH
    function = (
        "CREATE FUNCTION closed_clock_months_apply() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN "
        f"IF TG_OP IN ('UPDATE', 'DELETE') AND {old} THEN {_remove('OLD', month)}; END IF; "
        f"IF TG_OP IN ('INSERT', 'UPDATE') AND {new} THEN {_add('NEW', month)}; END IF; "
        "RETURN NULL; "
        "END $$"
    )
    apply = "FOR EACH ROW EXECUTE FUNCTION closed_clock_months_apply()"
    return [
        function,
        f"CREATE TRIGGER tr_clocks_months_insert AFTER INSERT ON clocks {apply}",
        f"CREATE TRIGGER tr_clocks_months_delete AFTER DELETE ON clocks {apply}",
        "CREATE TRIGGER tr_clocks_months_update "
        f"AFTER UPDATE OF {', '.join(PLACING)} ON clocks "
        f"FOR EACH ROW WHEN ((({old}) OR ({new})) AND ({_moved('IS DISTINCT FROM')})) "
        "EXECUTE FUNCTION closed_clock_months_apply()",
    ]


def upgrade() -> None:
    """Swap the running-clocks index for a covering one; add the monthly counts."""
    op.create_index(
        "ix_clocks_running_team_due_cover",
        "clocks",
        ["team_code", "due_at", "case_ref", "clock_id", "occurrence", "levels_fired", "status"],
        unique=False,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    op.drop_index("ix_clocks_running_team_due", table_name="clocks")
    op.create_table(
        "closed_clock_months",
        sa.Column("clock_id", CODE, nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("team_code", CODE, nullable=False),
        sa.Column("met", sa.Integer(), nullable=False),
        sa.Column("met_late", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "clock_id", "month", "team_code", name=op.f("pk_closed_clock_months")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_escalations_created_at", "escalations", ["created_at"])
    postgres = op.get_bind().dialect.name == "postgresql"
    month = (_POSTGRES_MONTH if postgres else _SQLITE_MONTH).format(row="clocks")
    op.execute(
        "INSERT INTO closed_clock_months (clock_id, month, team_code, met, met_late) "  # noqa: S608
        f"SELECT clock_id, {month}, team_code, "
        "SUM(CASE WHEN status = 'met' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'met_late' THEN 1 ELSE 0 END) "
        f"FROM clocks WHERE {_COUNTS.format(row='clocks')} "
        f"GROUP BY clock_id, {month}, team_code"
    )
    for statement in _postgres_triggers() if postgres else _sqlite_triggers():
        op.execute(statement)


def downgrade() -> None:
    """Drop the counts and their triggers; put the running-clocks index back."""
    for name in ("tr_clocks_months_update", "tr_clocks_months_delete", "tr_clocks_months_insert"):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {name} ON clocks")
        else:
            op.execute(f"DROP TRIGGER {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION closed_clock_months_apply()")
    op.drop_table("closed_clock_months")
    op.drop_index("ix_escalations_created_at", table_name="escalations")
    op.create_index(
        "ix_clocks_running_team_due",
        "clocks",
        ["team_code", "due_at"],
        unique=False,
        sqlite_where=RUNNING,
        postgresql_where=RUNNING,
    )
    op.drop_index("ix_clocks_running_team_due_cover", table_name="clocks")
