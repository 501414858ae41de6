"""Typed SQLAlchemy 2 models of the read model and the staff directory.

These classes describe the schema; the migrations in ``caseclock/db/migrations/versions``
create it, and a test compares the two. Nothing outside ``caseclock.db`` and
``caseclock.directory`` touches these objects: readers get pydantic views
(``caseclock.db.views``).

Manager posts (``teams.manager_code``, ``services.service_manager_code`` and
``head_of_service_code``) are plain codes rather than foreign keys: staff belong to teams
and teams are led by staff, and a cycle of foreign keys cannot be created or loaded in
one pass on SQLite. The directory loader checks those references instead. Case rows do
not reference teams either, because the case system may name a team before the directory
knows it, and a read-model write must not fail for that.
"""

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

CODE = 64  # staff, team, service, clock and event codes
REF = 128  # case references and escalation keys ("{case_ref}/{clock_id}/{occ}/{level}")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps the offset (``timestamptz``); SQLite has no timestamp type and would
    hand back naive values, so values are stored in UTC and read back as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes and store the UTC instant."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the read model; pass a timezone-aware value"
            raise ValueError(msg)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend handed back."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def json_type() -> JSON:
    """JSON on SQLite, JSONB on PostgreSQL."""
    return JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with the naming convention and shared column types."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: json_type(),
        dict[str, str]: json_type(),
        list[int]: json_type(),
        list[str]: json_type(),
    }


class Service(Base):
    """A service area, with its service manager and head of service."""

    __tablename__ = "services"

    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    service_manager_code: Mapped[str | None] = mapped_column(String(CODE))
    head_of_service_code: Mapped[str | None] = mapped_column(String(CODE))


class Team(Base):
    """A team of social workers with its team manager, in one service area."""

    __tablename__ = "teams"

    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    manager_code: Mapped[str | None] = mapped_column(String(CODE))
    service_code: Mapped[str] = mapped_column(ForeignKey("services.code"), index=True)


class Staff(Base):
    """A member of staff who may be told about a case; ``role`` is the job role."""

    __tablename__ = "staff"

    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    role: Mapped[str] = mapped_column(String(32), index=True)
    team_code: Mapped[str | None] = mapped_column(ForeignKey("teams.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Absence(Base):
    """A member of staff away from ``starts_on`` to ``ends_on`` inclusive, maybe covered."""

    __tablename__ = "absences"
    __table_args__ = (UniqueConstraint("staff_code", "starts_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_code: Mapped[str] = mapped_column(ForeignKey("staff.code"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    cover_code: Mapped[str | None] = mapped_column(ForeignKey("staff.code"))


class Case(Base):
    """A case as the workflows last recorded it; ``current_stages`` maps track to stage."""

    __tablename__ = "cases"

    case_ref: Mapped[str] = mapped_column(String(REF), primary_key=True)
    definition_id: Mapped[str] = mapped_column(String(CODE))
    definition_version: Mapped[str] = mapped_column(String(CODE))
    team_code: Mapped[str] = mapped_column(String(CODE), index=True)
    allocated_worker_code: Mapped[str | None] = mapped_column(String(CODE), index=True)
    opened_on: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    current_stages: Mapped[dict[str, str]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class CaseStage(Base):
    """History: a track of a case entered a stage because of an event."""

    __tablename__ = "case_stages"
    __table_args__ = (UniqueConstraint("case_ref", "track", "stage", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"))
    track: Mapped[str] = mapped_column(String(CODE))
    stage: Mapped[str] = mapped_column(String(CODE))
    entered_on: Mapped[date] = mapped_column(Date)
    event_id: Mapped[str] = mapped_column(String(CODE))


class Event(Base):
    """An accepted event; values are codes from the definition, never free text."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("case_ref", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"))
    event_id: Mapped[str] = mapped_column(String(CODE))
    event_type: Mapped[str] = mapped_column(String(CODE), index=True)
    effective_date: Mapped[date] = mapped_column(Date)
    effective_at: Mapped[datetime | None]
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(CODE))
    outcome: Mapped[str | None] = mapped_column(String(CODE))


class Clock(Base):
    """One occurrence of a clock; ``team_code`` copies the case's team for managers' queries."""

    __tablename__ = "clocks"
    __table_args__ = (
        UniqueConstraint("case_ref", "clock_id", "occurrence"),
        # "What is due or overdue in my team": team, then the open ones by due instant.
        Index("ix_clocks_team_due_status", "team_code", "due_at", "status"),
        # Leaders' monthly timeliness: one measure (clock) over a range of due dates.
        Index("ix_clocks_clock_due_date", "clock_id", "due_date"),
        # "Overdue and due soon for my teams": only running clocks (about one in seven),
        # by team then due instant, with what My work needs to count and order them (the
        # clock's key and the levels fired; the status too, without which SQLite before
        # 3.41 does not see the index as covering), so the index alone answers it. Queries
        # must say ``status = 'running'`` as a literal (not a bound parameter) for either
        # backend to use a partial index.
        Index(
            "ix_clocks_running_team_due_cover",
            "team_code",
            "due_at",
            "case_ref",
            "clock_id",
            "occurrence",
            "levels_fired",
            "status",
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        # Leaders' measures: occurrences of one clock closed in a range of days, with what
        # the monthly counts need, so the index alone answers them.
        Index("ix_clocks_clock_closed", "clock_id", "closed_on", "status", "team_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"))
    clock_id: Mapped[str] = mapped_column(String(CODE))
    occurrence: Mapped[int]
    team_code: Mapped[str] = mapped_column(String(CODE))
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    deadline: Mapped[dict[str, Any]]
    explanation: Mapped[str] = mapped_column(Text)
    levels_fired: Mapped[list[int]] = mapped_column(default=list)
    closed_by_event_id: Mapped[str | None] = mapped_column(String(CODE))
    closed_on: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime]


class ClosedClockMonth(Base):
    """How many occurrences of a clock a team met on time and late in a month (``YYYY-MM``).

    A summary of ``clocks`` for leaders' monthly measures, kept exact by triggers on
    ``clocks`` (migration 0006) in the transaction of every write, whoever writes: a clock
    met, met late, reopened, closed on another day (a late-recorded event) or moved to
    another team with its case moves its count. Rows whose counts fall to zero are kept.
    """

    __tablename__ = "closed_clock_months"
    # On SQLite the rows live in the primary key's b-tree: a leader's range of months is
    # read in one pass, without a look-up from the key to the row.
    __table_args__ = {"sqlite_with_rowid": False}

    clock_id: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    team_code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    met: Mapped[int] = mapped_column(Integer)
    met_late: Mapped[int] = mapped_column(Integer)


class Escalation(Base):
    """An alert at one level of a clock's ladder; ``key`` is the NotifyAction key."""

    __tablename__ = "escalations"
    __table_args__ = (
        Index("ix_escalations_case_ref_clock", "case_ref", "clock_id", "occurrence"),
        Index("ix_escalations_open_fire_at", "acknowledged_at", "fire_at"),
        # Leaders' measures: the escalations raised in a range of months.
        Index("ix_escalations_created_at", "created_at"),
    )

    key: Mapped[str] = mapped_column(String(REF), primary_key=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"))
    clock_id: Mapped[str] = mapped_column(String(CODE))
    clock_title: Mapped[str] = mapped_column(String(200))
    occurrence: Mapped[int]
    level: Mapped[int]
    level_name: Mapped[str] = mapped_column(String(CODE))
    covers_levels: Mapped[list[int]]
    state: Mapped[str] = mapped_column(String(16))
    roles: Mapped[list[str]]
    fire_at: Mapped[datetime]
    due_at: Mapped[datetime]
    what_to_do: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(CODE))
    acknowledgement_note: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One attempt record per (escalation, recipient, channel): the delivery ledger.

    ``claimed_until`` is the lease of the sender that holds the claim; a claim expires so
    that a sender killed mid-send does not leave the alert undelivered.
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("escalation_key", "staff_code", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    escalation_key: Mapped[str] = mapped_column(ForeignKey("escalations.key"))
    staff_code: Mapped[str] = mapped_column(String(CODE), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class InboxItem(Base):
    """An escalation in a member of staff's in-app inbox."""

    __tablename__ = "inbox_items"
    __table_args__ = (UniqueConstraint("staff_code", "escalation_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_code: Mapped[str] = mapped_column(String(CODE))
    escalation_key: Mapped[str] = mapped_column(ForeignKey("escalations.key"))
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did or saw what, when; ``case_ref`` is kept even for unknown cases."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_case_ref_at", "case_ref", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(CODE))
    action: Mapped[str] = mapped_column(String(CODE))
    case_ref: Mapped[str | None] = mapped_column(String(REF))
    detail: Mapped[dict[str, Any]]


class ApiToken(Base):
    """An API token for a case system or an operator: its hash, never the token itself.

    ``id`` is the public prefix of the token (``cc_<id>_<secret>``), so a presented token is
    found by its id and checked by its hash; ``staff_code`` ties a manager's or
    practitioner's token to their place in the directory. Managed by ``caseclock.db.tokens``.
    """

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(CODE))
    role: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(200))
    staff_code: Mapped[str | None] = mapped_column(String(CODE))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(CODE))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(CODE))
    last_used_at: Mapped[datetime | None]


class PlannedAlert(Base):
    """An alert a case's clocks will raise if nothing changes, for the sweep to deliver.

    The case's workflow writes its plan (``caseclock.core.forecast``) and replaces the part
    still in the future whenever the case changes; the sweep delivers each row once it
    falls due. ``due_at`` is when the sweep should next try: ``fire_at``, or later after an
    attempt that could not deliver (``last_error`` says why, with codes only).
    """

    __tablename__ = "planned_alerts"
    __table_args__ = (
        # The sweep's question: what is planned and due by now, oldest first.
        Index("ix_planned_alerts_status_due_at", "status", "due_at"),
        # Replacing a case's plan: its future planned rows (migration 0005 says why).
        Index("ix_planned_alerts_case_status_fire", "case_ref", "status", "fire_at"),
    )

    key: Mapped[str] = mapped_column(String(REF), primary_key=True)
    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"))
    status: Mapped[str] = mapped_column(String(16))
    fire_at: Mapped[datetime]
    due_at: Mapped[datetime]
    action: Mapped[dict[str, Any]]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime]


class CasePlanVersion(Base):
    """The version of the plan last written for a case, so an older write cannot win."""

    __tablename__ = "case_plan_versions"

    case_ref: Mapped[str] = mapped_column(ForeignKey("cases.case_ref"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class AlertSweepState(Base):
    """One row: when the sweep will next look for due alerts, so a plan due sooner wakes it."""

    __tablename__ = "alert_sweep"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_wake_at: Mapped[datetime | None]
