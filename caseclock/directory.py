"""Who is told: turning an escalation's roles into the people to alert on a given day.

Roles follow the management line of a case's team: the allocated ``social_worker``, the
team's ``team_manager``, the ``service_manager`` and ``head_of_service`` of the team's
service area, and the ``director``. Someone away that day (or no longer active) is replaced
by their cover, or if nobody covers them, by their own line manager one step up. A post
nobody holds (an unallocated case, a vacant post) goes to the next post up the line, marked
as covering for it, so an alert is never dropped for want of a name.

The directory is loaded from a YAML file (:class:`DirectorySeed`) into the database, where
the read model keeps it; staff details are staff data, never data about a child.
"""

from collections.abc import Sequence
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Self

import structlog
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from caseclock.db.directory_rows import (
    upsert_absence,
    upsert_service,
    upsert_staff,
    upsert_team,
)
from caseclock.db.models import Absence, Service, Staff, Team

UNALLOCATED = "unallocated"
"""``covering_for`` of a team manager told in place of an unallocated case's worker."""


class JobRole(StrEnum):
    """Job roles, in the order of the management line (each reports to the next)."""

    SOCIAL_WORKER = "social_worker"
    TEAM_MANAGER = "team_manager"
    SERVICE_MANAGER = "service_manager"
    HEAD_OF_SERVICE = "head_of_service"
    DIRECTOR = "director"


LADDER = tuple(JobRole)


class Recipient(BaseModel):
    """A person to alert, in the role they are told for.

    ``role`` is the role asked for, not necessarily the person's job role. ``covering_for``
    is None when the person holds that role for the case; otherwise the staff code of the
    absent person they stand in for, ``"unallocated"``, or ``"vacant:<role>"``.
    """

    model_config = ConfigDict(frozen=True)

    staff_code: str
    display_name: str
    email: str
    webhook_url: str | None
    role: str
    covering_for: str | None = None


# The seed file -------------------------------------------------------------------------


class ServiceSeed(BaseModel):
    """A service area in the seed file."""

    code: str
    name: str
    service_manager: str | None = None
    head_of_service: str | None = None


class TeamSeed(BaseModel):
    """A team in the seed file."""

    code: str
    name: str
    service: str
    manager: str | None = None


class StaffSeed(BaseModel):
    """A member of staff in the seed file."""

    code: str
    display_name: str
    email: str
    role: JobRole
    team: str | None = None
    webhook_url: str | None = None
    active: bool = True


class AbsenceSeed(BaseModel):
    """An absence (inclusive dates) in the seed file, with the person covering if any."""

    staff: str
    starts_on: date
    ends_on: date
    cover: str | None = None


class DirectorySeed(BaseModel):
    """The whole directory as a file holds it; every reference must resolve within it."""

    model_config = ConfigDict(extra="forbid")

    services: list[ServiceSeed] = Field(default_factory=list)
    teams: list[TeamSeed] = Field(default_factory=list)
    staff: list[StaffSeed] = Field(default_factory=list)
    absences: list[AbsenceSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        """Collect every broken reference, duplicate and bad date range, not just the first."""
        problems: list[str] = []
        staff = self._codes("staff", [s.code for s in self.staff], problems)
        teams = self._codes("teams", [t.code for t in self.teams], problems)
        services = self._codes("services", [s.code for s in self.services], problems)

        def check(where: str, code: str | None, known: set[str], kind: str) -> None:
            if code is not None and code not in known:
                problems.append(f"{where}: unknown {kind} {code!r}")

        for i, svc in enumerate(self.services):
            check(f"services[{i}].service_manager", svc.service_manager, staff, "staff code")
            check(f"services[{i}].head_of_service", svc.head_of_service, staff, "staff code")
        for i, team in enumerate(self.teams):
            check(f"teams[{i}].service", team.service, services, "service")
            check(f"teams[{i}].manager", team.manager, staff, "staff code")
        for i, person in enumerate(self.staff):
            check(f"staff[{i}].team", person.team, teams, "team")
        for i, absence in enumerate(self.absences):
            check(f"absences[{i}].staff", absence.staff, staff, "staff code")
            check(f"absences[{i}].cover", absence.cover, staff, "staff code")
            if absence.ends_on < absence.starts_on:
                problems.append(f"absences[{i}]: ends_on is before starts_on")
            if absence.cover == absence.staff:
                problems.append(f"absences[{i}]: {absence.staff!r} cannot cover themselves")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @staticmethod
    def _codes(kind: str, codes: list[str], problems: list[str]) -> set[str]:
        seen: set[str] = set()
        for code in codes:
            if code in seen:
                problems.append(f"{kind}: code {code!r} appears more than once")
            seen.add(code)
        return seen

    @classmethod
    def from_yaml(cls, path: Path) -> "DirectorySeed":
        """Read and validate a seed file.

        Raises:
            pydantic.ValidationError: Listing every problem in the file.

        """
        return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})


async def load_directory(
    session_factory: async_sessionmaker[AsyncSession], data: DirectorySeed
) -> None:
    """Upsert the seed's services, teams, staff and absences in one transaction.

    Loading the same seed again changes nothing. Rows the seed no longer mentions are left
    alone: mark staff ``active: false`` rather than deleting them, so history keeps its names.
    """
    async with session_factory.begin() as session:
        for svc in data.services:
            await upsert_service(
                session,
                code=svc.code,
                name=svc.name,
                service_manager=svc.service_manager,
                head_of_service=svc.head_of_service,
            )
        # Teams before staff (staff.team_code references teams); managers are plain codes.
        for team in data.teams:
            await upsert_team(
                session, code=team.code, name=team.name, manager=team.manager, service=team.service
            )
        for person in data.staff:
            await upsert_staff(
                session,
                code=person.code,
                display_name=person.display_name,
                email=person.email,
                webhook_url=person.webhook_url,
                role=person.role.value,
                team=person.team,
                active=person.active,
            )
        for absence in data.absences:
            await upsert_absence(
                session,
                staff=absence.staff,
                starts_on=absence.starts_on,
                ends_on=absence.ends_on,
                cover=absence.cover,
            )


# Resolution ----------------------------------------------------------------------------


class _Resolution:
    """One call of :meth:`Directory.resolve`: the case's team, the day, and what was read."""

    def __init__(self, session: AsyncSession, team: str, on: date) -> None:
        self.session = session
        self.team = team
        self.on = on

    async def staff(self, code: str) -> Staff | None:
        return await self.session.get(Staff, code)

    async def available(self, person: Staff) -> bool:
        return person.active and await self.absence(person.code) is None

    async def absence(self, code: str) -> Absence | None:
        query = (
            select(Absence)
            .where(Absence.staff_code == code, Absence.starts_on <= self.on)
            .where(Absence.ends_on >= self.on)
            .order_by(Absence.cover_code.is_(None), Absence.starts_on.desc())
        )
        return (await self.session.scalars(query.limit(1))).first()

    async def holders(self, role: JobRole, team_code: str | None) -> list[str]:
        """The staff codes in a post of ``team_code``'s line (the director's is the same)."""
        if role is JobRole.DIRECTOR:
            query = select(Staff.code).where(Staff.role == role.value, Staff.active.is_(True))
            return list(await self.session.scalars(query.order_by(Staff.code)))
        team = await self.session.get(Team, team_code) if team_code else None
        if team is None:
            return []
        if role is JobRole.TEAM_MANAGER:
            return [team.manager_code] if team.manager_code else []
        service = await self.session.get(Service, team.service_code)
        code = None
        if service is not None and role is JobRole.SERVICE_MANAGER:
            code = service.service_manager_code
        elif service is not None and role is JobRole.HEAD_OF_SERVICE:
            code = service.head_of_service_code
        return [code] if code else []

    async def above(self, role: JobRole, team_code: str | None, exclude: str) -> str | None:
        """The first filled post above ``role`` in a team's line, other than ``exclude``."""
        for higher in LADDER[LADDER.index(role) + 1 :]:
            for code in await self.holders(higher, team_code):
                if code != exclude:
                    return code
        return None

    async def line_manager(self, person: Staff) -> str | None:
        """The person one step up from ``person`` in the management line."""
        role = JobRole(person.role)
        team_code = person.team_code or self.team
        if role is JobRole.TEAM_MANAGER:
            led = await self.session.scalar(
                select(Team.code).where(Team.manager_code == person.code)
            )
            team_code = led or team_code
        elif role in (JobRole.SERVICE_MANAGER, JobRole.HEAD_OF_SERVICE):
            column = (
                Service.service_manager_code
                if role is JobRole.SERVICE_MANAGER
                else Service.head_of_service_code
            )
            service = await self.session.scalar(
                select(Service.code).where(column == person.code).order_by(Service.code)
            )
            if service is not None:
                query = select(Team.code).where(Team.service_code == service).order_by(Team.code)
                team_code = await self.session.scalar(query.limit(1)) or team_code
        return await self.above(role, team_code, exclude=person.code)

    async def reach(
        self, code: str, role: str, covering_for: str | None, tried: set[str]
    ) -> Recipient | None:
        """``code`` if they are at work that day, else whoever stands in for them."""
        if code in tried:
            return None
        tried.add(code)
        person = await self.staff(code)
        if person is None:
            # A code the directory does not know (a worker who has left): their team's line.
            manager = await self.above(JobRole.SOCIAL_WORKER, self.team, exclude=code)
            return await self.reach(manager, role, covering_for or code, tried) if manager else None
        if await self.available(person):
            return Recipient(
                staff_code=person.code,
                display_name=person.display_name,
                email=person.email,
                webhook_url=person.webhook_url,
                role=role,
                covering_for=covering_for,
            )
        absence = await self.absence(code)
        if absence is not None and absence.cover_code is not None:
            found = await self.reach(absence.cover_code, role, covering_for or code, tried)
            if found is not None:
                return found
        manager = await self.line_manager(person)
        return await self.reach(manager, role, covering_for or code, tried) if manager else None


class Directory:
    """Finds the people to alert for a case, from the directory in the database.

    Args:
        session_factory: Sessions for the database holding the directory.

    """

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = session_factory
        self._log = structlog.get_logger(__name__)

    async def resolve(
        self, team: str, allocated_worker: str | None, roles: Sequence[str], on: date
    ) -> list[Recipient]:
        """The people to alert for these roles of a case, on a given day, each once.

        Args:
            team: The case's team code.
            allocated_worker: The allocated worker's staff code, or None if unallocated.
            roles: Ladder roles to tell, in order (``social_worker`` ... ``director``).
            on: The day of the alert, for absences.

        Returns:
            Recipients in the order of ``roles``; a person reached through two roles appears
            once, for the first.

        Raises:
            ValueError: If a role is not one of the job roles.

        """
        unknown = [role for role in roles if role not in {r.value for r in JobRole}]
        if unknown:
            known = ", ".join(JobRole)
            msg = f"unknown role(s) {', '.join(map(repr, unknown))}; roles are {known}"
            raise ValueError(msg)
        recipients: dict[str, Recipient] = {}
        async with self._sessions() as session:
            resolution = _Resolution(session, team, on)
            for role in map(JobRole, roles):
                for found in await self._resolve_role(resolution, role, allocated_worker):
                    recipients.setdefault(found.staff_code, found)
        return list(recipients.values())

    async def _resolve_role(
        self, resolution: _Resolution, role: JobRole, allocated_worker: str | None
    ) -> list[Recipient]:
        if role is JobRole.SOCIAL_WORKER:
            holders = [allocated_worker] if allocated_worker else []
        else:
            holders = await resolution.holders(role, resolution.team)
        covering_for: str | None = None
        if not holders:
            covering_for = UNALLOCATED if role is JobRole.SOCIAL_WORKER else f"vacant:{role}"
            above = await resolution.above(role, resolution.team, exclude="")
            holders = [above] if above else []
        found: list[Recipient] = []
        for code in holders:
            recipient = await resolution.reach(code, role.value, covering_for, tried=set())
            if recipient is not None:
                found.append(recipient)
        if not found:
            self._log.warning("no_recipient_for_role", team=resolution.team, role=role.value)
        return found
