"""Reading and changing the staff directory one entry at a time (the API's directory routes).

``caseclock.directory.load_directory`` loads a whole seed file whose references resolve
within it; here each change names one service, team, member of staff or absence, and its
references are checked against the directory already in the database. A change that
names an unknown code is refused with the field at fault and changes nothing.
"""

from datetime import date

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.db.directory_rows import (
    upsert_absence,
    upsert_service,
    upsert_staff,
    upsert_team,
)
from caseclock.db.models import Absence, Service, Staff, Team
from caseclock.directory import JobRole


class DirectoryChangeError(ValueError):
    """A directory change names something that does not exist, or contradicts itself."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{where}: {reason}" for where, reason in problems))


class ServiceView(BaseModel):
    """A service area and the codes of its service manager and head of service."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    service_manager: str | None
    head_of_service: str | None


class TeamView(BaseModel):
    """A team, its service area and the code of its team manager."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    service: str
    manager: str | None


class StaffView(BaseModel):
    """A member of staff: how to reach them, their job role and team."""

    model_config = ConfigDict(frozen=True)

    code: str
    display_name: str
    email: str
    webhook_url: str | None
    role: JobRole
    team: str | None
    active: bool


class AbsenceView(BaseModel):
    """A member of staff away (inclusive dates), and who covers for them."""

    model_config = ConfigDict(frozen=True)

    staff: str
    starts_on: date
    ends_on: date
    cover: str | None


class DirectoryAdmin:
    """Read and upsert directory entries, checking references against the database.

    Args:
        session_factory: Sessions for the database holding the directory.

    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory

    # Reads ---------------------------------------------------------------------------

    async def services(self) -> list[ServiceView]:
        """Every service area, by code."""
        async with self._sessions() as session:
            rows = await session.scalars(select(Service).order_by(Service.code))
            return [_service(row) for row in rows]

    async def teams(self) -> list[TeamView]:
        """Every team, by code."""
        async with self._sessions() as session:
            rows = await session.scalars(select(Team).order_by(Team.code))
            return [_team(row) for row in rows]

    async def staff(self, team: str | None = None) -> list[StaffView]:
        """Every member of staff (or one team's), by code."""
        query = select(Staff).order_by(Staff.code)
        if team is not None:
            query = query.where(Staff.team_code == team)
        async with self._sessions() as session:
            return [_staff(row) for row in await session.scalars(query)]

    async def one_staff(self, code: str) -> StaffView | None:
        """One member of staff, or None."""
        async with self._sessions() as session:
            row = await session.get(Staff, code)
            return None if row is None else _staff(row)

    async def absences(self, staff: str | None = None) -> list[AbsenceView]:
        """Absences (or one person's), latest first."""
        query = select(Absence).order_by(Absence.starts_on.desc(), Absence.staff_code)
        if staff is not None:
            query = query.where(Absence.staff_code == staff)
        async with self._sessions() as session:
            return [_absence(row) for row in await session.scalars(query)]

    # Changes -------------------------------------------------------------------------

    async def put_service(self, entry: ServiceView) -> ServiceView:
        """Create or replace a service area; its managers must be known staff codes."""
        async with self._sessions.begin() as session:
            problems = await _unknown_staff(
                session,
                {
                    "service_manager": entry.service_manager,
                    "head_of_service": entry.head_of_service,
                },
            )
            _raise(problems)
            await upsert_service(
                session,
                code=entry.code,
                name=entry.name,
                service_manager=entry.service_manager,
                head_of_service=entry.head_of_service,
            )
        return entry

    async def put_team(self, entry: TeamView) -> TeamView:
        """Create or replace a team; its service and manager must exist."""
        async with self._sessions.begin() as session:
            problems = await _unknown_staff(session, {"manager": entry.manager})
            if await session.get(Service, entry.service) is None:
                problems.append(("service", f"unknown service {entry.service!r}"))
            _raise(problems)
            await upsert_team(
                session,
                code=entry.code,
                name=entry.name,
                manager=entry.manager,
                service=entry.service,
            )
        return entry

    async def put_staff(self, entry: StaffView) -> StaffView:
        """Create or replace a member of staff; their team, if any, must exist."""
        async with self._sessions.begin() as session:
            if entry.team is not None and await session.get(Team, entry.team) is None:
                _raise([("team", f"unknown team {entry.team!r}")])
            await upsert_staff(
                session,
                code=entry.code,
                display_name=entry.display_name,
                email=entry.email,
                webhook_url=entry.webhook_url,
                role=entry.role.value,
                team=entry.team,
                active=entry.active,
            )
        return entry

    async def put_absence(self, entry: AbsenceView) -> AbsenceView:
        """Create or replace the absence of a person starting on a day, with its cover."""
        problems: list[tuple[str, str]] = []
        if entry.ends_on < entry.starts_on:
            problems.append(("ends_on", "is before starts_on"))
        if entry.cover is not None and entry.cover == entry.staff:
            problems.append(("cover", "a person cannot cover their own absence"))
        async with self._sessions.begin() as session:
            problems += await _unknown_staff(session, {"staff": entry.staff, "cover": entry.cover})
            _raise(problems)
            await upsert_absence(
                session,
                staff=entry.staff,
                starts_on=entry.starts_on,
                ends_on=entry.ends_on,
                cover=entry.cover,
            )
        return entry


async def _unknown_staff(
    session: AsyncSession, references: dict[str, str | None]
) -> list[tuple[str, str]]:
    problems = []
    for where, code in references.items():
        if code is not None and await session.get(Staff, code) is None:
            problems.append((where, f"unknown staff code {code!r}"))
    return problems


def _raise(problems: list[tuple[str, str]]) -> None:
    if problems:
        raise DirectoryChangeError(problems)


def _service(row: Service) -> ServiceView:
    return ServiceView(
        code=row.code,
        name=row.name,
        service_manager=row.service_manager_code,
        head_of_service=row.head_of_service_code,
    )


def _team(row: Team) -> TeamView:
    return TeamView(
        code=row.code, name=row.name, service=row.service_code, manager=row.manager_code
    )


def _staff(row: Staff) -> StaffView:
    return StaffView(
        code=row.code,
        display_name=row.display_name,
        email=row.email,
        webhook_url=row.webhook_url,
        role=JobRole(row.role),
        team=row.team_code,
        active=row.active,
    )


def _absence(row: Absence) -> AbsenceView:
    return AbsenceView(
        staff=row.staff_code, starts_on=row.starts_on, ends_on=row.ends_on, cover=row.cover_code
    )
