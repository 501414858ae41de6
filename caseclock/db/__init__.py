"""The read model: what the workflows have recorded, for the API, dashboard and reports.

Temporal holds the truth of each case; these tables are a projection written by idempotent
activities (upserts), plus the staff directory that decides who is told. SQLite by default,
PostgreSQL in production; the schema changes only through the Alembic migrations in
``caseclock/db/migrations``. Only case references and codes are stored, never personal data
of a child.
"""


class ReadModelError(Exception):
    """A read-model operation was refused; the message says why."""


class UnknownCaseError(ReadModelError, LookupError):
    """The case reference is not in the read model."""

    def __init__(self, case_ref: str) -> None:
        super().__init__(f"case {case_ref!r} is not in the read model; record the case first")
        self.case_ref = case_ref


class UnknownEscalationError(ReadModelError, LookupError):
    """No escalation has this key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no escalation has the key {key!r}")
        self.key = key
