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

import time
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import NamedTuple, Self, TypeVar

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
# Cached resolutions kept at most (a storm of thousands of distinct cases must not grow it).
_CACHE_LIMIT = 10_000
"""``covering_for`` of a team manager told in place of an unallocated case's worker."""


class JobRole(StrEnum):
    """Job roles, in the order of the management line (each reports to the next)."""

    SOCIAL_WORKER = "social_worker"
    TEAM_MANAGER = "team_manager"
    SERVICE_MANAGER = "service_manager"
    HEAD_OF_SERVICE = "head_of_service"
    DIRECTOR = "director"


LADDER = tuple(JobRole)
_ROLE_CODES = frozenset(role.value for role in JobRole)
_Row = TypeVar("_Row", Staff, Team, Service)


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


class _Lookups:
    """Directory reads in one session, each made once (a batch resolves many alerts).

    Rows are held here, not only in the session's identity map (which holds them weakly,
    so a row nobody refers to any more would be read again), with misses remembered too.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._rows: dict[tuple[type[Staff | Team | Service], str], Staff | Team | Service | None]
        self._rows = {}
        self._absences: dict[tuple[str, date], Absence | None] = {}
        self._directors: list[str] | None = None
        self._led: dict[str, str | None] = {}
        self._first_team: dict[tuple[JobRole, str], str | None] = {}

    async def _get(self, model: type[_Row], code: str) -> _Row | None:
        if (model, code) not in self._rows:
            self._rows[model, code] = await self.session.get(model, code)
        found = self._rows[model, code]
        return found if isinstance(found, model) else None

    async def staff(self, code: str) -> Staff | None:
        return await self._get(Staff, code)

    async def team(self, code: str) -> Team | None:
        return await self._get(Team, code)

    async def service(self, code: str) -> Service | None:
        return await self._get(Service, code)

    async def absence(self, code: str, on: date) -> Absence | None:
        """The absence of ``code`` on ``on`` (one with cover first), or None."""
        if (code, on) not in self._absences:
            query = (
                select(Absence)
                .where(Absence.staff_code == code, Absence.starts_on <= on)
                .where(Absence.ends_on >= on)
                .order_by(Absence.cover_code.is_(None), Absence.starts_on.desc())
            )
            found = (await self.session.scalars(query.limit(1))).first()
            self._absences[code, on] = found
        return self._absences[code, on]

    async def directors(self) -> list[str]:
        if self._directors is None:
            query = select(Staff.code).where(
                Staff.role == JobRole.DIRECTOR.value, Staff.active.is_(True)
            )
            self._directors = list(await self.session.scalars(query.order_by(Staff.code)))
        return self._directors

    async def team_led_by(self, code: str) -> str | None:
        if code not in self._led:
            query = select(Team.code).where(Team.manager_code == code)
            self._led[code] = await self.session.scalar(query)
        return self._led[code]

    async def first_team_of_service_run_by(self, role: JobRole, code: str) -> str | None:
        """The first team (by code) of the first service where ``code`` holds ``role``."""
        if (role, code) not in self._first_team:
            column = (
                Service.service_manager_code
                if role is JobRole.SERVICE_MANAGER
                else Service.head_of_service_code
            )
            service = await self.session.scalar(
                select(Service.code).where(column == code).order_by(Service.code)
            )
            team = None
            if service is not None:
                query = select(Team.code).where(Team.service_code == service).order_by(Team.code)
                team = await self.session.scalar(query.limit(1))
            self._first_team[role, code] = team
        return self._first_team[role, code]


class _Resolution:
    """One resolution: the case's team, the day, and the batch's lookups."""

    def __init__(self, lookups: _Lookups, team: str, on: date) -> None:
        self.lookups = lookups
        self.team = team
        self.on = on

    async def staff(self, code: str) -> Staff | None:
        return await self.lookups.staff(code)

    async def available(self, person: Staff) -> bool:
        return person.active and await self.absence(person.code) is None

    async def absence(self, code: str) -> Absence | None:
        return await self.lookups.absence(code, self.on)

    async def holders(self, role: JobRole, team_code: str | None) -> list[str]:
        """The staff codes in a post of ``team_code``'s line (the director's is the same)."""
        if role is JobRole.DIRECTOR:
            return await self.lookups.directors()
        team = await self.lookups.team(team_code) if team_code else None
        if team is None:
            return []
        if role is JobRole.TEAM_MANAGER:
            return [team.manager_code] if team.manager_code else []
        service = await self.lookups.service(team.service_code)
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
            team_code = await self.lookups.team_led_by(person.code) or team_code
        elif role in (JobRole.SERVICE_MANAGER, JobRole.HEAD_OF_SERVICE):
            first = await self.lookups.first_team_of_service_run_by(role, person.code)
            team_code = first or team_code
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


class ResolveRequest(NamedTuple):
    """What :meth:`Directory.resolve_many` resolves: a case's team and worker, roles, a day."""

    team: str
    allocated_worker: str | None
    roles: tuple[str, ...]
    on: date


def unknown_roles_error(roles: Sequence[str]) -> str | None:
    """Why ``roles`` cannot be resolved (some are not job roles), or None if they can."""
    unknown = [role for role in roles if role not in _ROLE_CODES]
    if not unknown:
        return None
    known = ", ".join(JobRole)
    return f"unknown role(s) {', '.join(map(repr, unknown))}; roles are {known}"


class Directory:
    """Finds the people to alert for a case, from the directory in the database.

    Args:
        session_factory: Sessions for the database holding the directory.
        cache_ttl: How long a resolution may be reused by later calls in this process;
            zero (the default) reads the directory afresh on every call. Directory edits
            made elsewhere (the admin API, a seed load) show after at most this long, and
            :meth:`clear_cache` drops everything at once.
        now: A monotonic clock in seconds, replaceable in tests.

    """

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        cache_ttl: timedelta = timedelta(0),
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = session_factory
        self._log = structlog.get_logger(__name__)
        self._ttl = cache_ttl.total_seconds()
        self._now = now
        self._cache: dict[ResolveRequest, tuple[float, list[Recipient]]] = {}

    def clear_cache(self) -> None:
        """Forget every cached resolution (after a directory edit in this process)."""
        self._cache.clear()

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
        request = ResolveRequest(team, allocated_worker, tuple(roles), on)
        return (await self.resolve_many([request]))[0]

    async def resolve_many(self, requests: Sequence[ResolveRequest]) -> list[list[Recipient]]:
        """:meth:`resolve` for many alerts in one session, each distinct request once.

        Returns:
            The recipients of each request, in order.

        Raises:
            ValueError: If a role of any request is not one of the job roles.

        """
        for request in requests:
            error = unknown_roles_error(request.roles)
            if error is not None:
                raise ValueError(error)
        now = self._now()
        found: dict[ResolveRequest, list[Recipient]] = {}
        for request in requests:
            cached = self._cache.get(request)
            if cached is not None and now - cached[0] < self._ttl:
                found[request] = cached[1]
        missing = [request for request in dict.fromkeys(requests) if request not in found]
        if missing:
            async with self._sessions() as session:
                lookups = _Lookups(session)
                for request in missing:
                    found[request] = await self._resolve_one(lookups, request)
            if self._ttl > 0:
                if len(self._cache) > _CACHE_LIMIT:
                    self._cache.clear()
                self._cache.update((request, (now, found[request])) for request in missing)
        # Recipients are frozen models, so the lists are copied but their items shared.
        return [list(found[request]) for request in requests]

    async def _resolve_one(self, lookups: _Lookups, request: ResolveRequest) -> list[Recipient]:
        recipients: dict[str, Recipient] = {}
        resolution = _Resolution(lookups, request.team, request.on)
        for role in map(JobRole, request.roles):
            for found in await self._resolve_role(resolution, role, request.allocated_worker):
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
