"""Directory routes (admin only): services, teams, staff, job roles, absences and cover.

The directory decides who is told about a case and which cases a manager may see. Each PUT
creates or replaces one entry, names it by its code in the URL, and is audited; a
reference to an unknown code is refused (422) and changes nothing.
"""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import Field

from caseclock.api.auth import SEES_EVERYTHING, Admin, Principal, Role
from caseclock.api.problems import FieldProblem, ProblemError, problem_responses
from caseclock.api.schemas import Body, Code, RoleInfo, Roles
from caseclock.api.services import Services
from caseclock.db.directory_admin import (
    AbsenceView,
    DirectoryChangeError,
    ServiceView,
    StaffView,
    TeamView,
)
from caseclock.directory import JobRole

router = APIRouter(prefix="/directory", tags=["directory"])

CodePath = Annotated[Code, Path(description="The entry's code.")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
ADMIN_ERRORS = problem_responses(401, 403, 404, 422)

API_ROLES = {
    Role.INTEGRATION: "A case system: starts cases, records events, reads every case.",
    Role.PRACTITIONER: "A social worker: reads and records on the cases allocated to them.",
    Role.MANAGER: "A manager: the cases of the teams they manage (as team manager, service "
    "manager or head of service, or covering for one); acknowledges escalations.",
    Role.LEADER: "A leader: reads every case and list; acknowledges escalations.",
    Role.ADMIN: "An administrator: everything, plus the directory and API tokens.",
}
JOB_ROLES = {
    JobRole.SOCIAL_WORKER: "The allocated worker; first on every ladder.",
    JobRole.TEAM_MANAGER: "Manages a team; told when a deadline of the team's case drifts.",
    JobRole.SERVICE_MANAGER: "Manages a service area's teams; next up the ladder.",
    JobRole.HEAD_OF_SERVICE: "Heads a service area; next up the ladder.",
    JobRole.DIRECTOR: "The director of children's services; top of every ladder.",
}


class ServiceIn(Body):
    """A service area."""

    name: Name
    service_manager: Code | None = None
    head_of_service: Code | None = None


class TeamIn(Body):
    """A team, in a service area."""

    name: Name
    service: Code
    manager: Code | None = None


class StaffIn(Body):
    """A member of staff; ``role`` is their job role in the management line."""

    display_name: Name
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    role: JobRole
    team: Code | None = None
    webhook_url: Annotated[str | None, Field(max_length=2000, pattern=r"^https?://\S+$")] = None
    active: bool = True


class AbsenceIn(Body):
    """An absence starting on the day in the URL, and who covers it."""

    ends_on: date
    cover: Code | None = None


def _refused(error: DirectoryChangeError) -> ProblemError:
    return ProblemError(
        422,
        "directory-reference",
        "The directory change refers to something unknown",
        str(error),
        [FieldProblem(field=where, reason=reason) for where, reason in error.problems],
    )


async def _audit(services: Services, principal: Principal, action: str, **detail: object) -> None:
    await services.casework.audit(principal.actor, action, None, **detail)


@router.get("/roles", response_model=Roles, summary="List roles", responses=ADMIN_ERRORS)
async def roles(principal: Admin) -> Roles:
    """API roles (what a caller may do) and job roles (who is told, in ladder order)."""
    del principal  # admin only
    return Roles(
        api_roles=[
            RoleInfo(
                role=role.value,
                description=API_ROLES[role]
                + (" Sees every case." if role in SEES_EVERYTHING else ""),
            )
            for role in Role
        ],
        job_roles=[RoleInfo(role=role.value, description=JOB_ROLES[role]) for role in JobRole],
    )


@router.get("/services", response_model=list[ServiceView], summary="List services")
async def list_services(principal: Admin, services: Services) -> list[ServiceView]:
    """Every service area, with its service manager and head of service."""
    await _audit(services, principal, "directory.read", entries="services")
    return await services.directory.services()


@router.put(
    "/services/{code}", response_model=ServiceView, summary="Put a service", responses=ADMIN_ERRORS
)
async def put_service(
    code: CodePath, body: ServiceIn, principal: Admin, services: Services
) -> ServiceView:
    """Create or replace a service area; its managers must be known staff codes."""
    try:
        entry = await services.directory.put_service(ServiceView(code=code, **body.model_dump()))
    except DirectoryChangeError as error:
        raise _refused(error) from error
    await _audit(services, principal, "directory.put.service", code=code)
    return entry


@router.get("/teams", response_model=list[TeamView], summary="List teams")
async def list_teams(principal: Admin, services: Services) -> list[TeamView]:
    """Every team, with its service area and team manager."""
    await _audit(services, principal, "directory.read", entries="teams")
    return await services.directory.teams()


@router.put("/teams/{code}", response_model=TeamView, summary="Put a team", responses=ADMIN_ERRORS)
async def put_team(code: CodePath, body: TeamIn, principal: Admin, services: Services) -> TeamView:
    """Create or replace a team; its service and manager must exist."""
    try:
        entry = await services.directory.put_team(TeamView(code=code, **body.model_dump()))
    except DirectoryChangeError as error:
        raise _refused(error) from error
    await _audit(services, principal, "directory.put.team", code=code)
    return entry


@router.get("/staff", response_model=list[StaffView], summary="List staff")
async def list_staff(
    principal: Admin,
    services: Services,
    team: Annotated[Code | None, Query(description="Only this team's staff.")] = None,
) -> list[StaffView]:
    """Every member of staff, or one team's."""
    await _audit(services, principal, "directory.read", entries="staff", team=team)
    return await services.directory.staff(team)


@router.get(
    "/staff/{code}",
    response_model=StaffView,
    summary="Show a member of staff",
    responses=ADMIN_ERRORS,
)
async def get_staff(code: CodePath, principal: Admin, services: Services) -> StaffView:
    """One member of staff."""
    found = await services.directory.one_staff(code)
    if found is None:
        raise ProblemError(
            404,
            "unknown-staff",
            "Unknown member of staff",
            f"no member of staff has the code {code!r}",
            [FieldProblem(field="code", reason="unknown staff code")],
        )
    await _audit(services, principal, "directory.read", entries="staff", code=code)
    return found


@router.put(
    "/staff/{code}",
    response_model=StaffView,
    summary="Put a member of staff",
    responses=ADMIN_ERRORS,
)
async def put_staff(
    code: CodePath, body: StaffIn, principal: Admin, services: Services
) -> StaffView:
    """Create or replace a member of staff; mark leavers ``active: false`` rather than delete."""
    try:
        entry = await services.directory.put_staff(StaffView(code=code, **body.model_dump()))
    except DirectoryChangeError as error:
        raise _refused(error) from error
    await _audit(services, principal, "directory.put.staff", code=code)
    return entry


@router.get("/absences", response_model=list[AbsenceView], summary="List absences and cover")
async def list_absences(
    principal: Admin,
    services: Services,
    staff: Annotated[Code | None, Query(description="Only this person's absences.")] = None,
) -> list[AbsenceView]:
    """Absences, latest first, with who covers each."""
    await _audit(services, principal, "directory.read", entries="absences", staff=staff)
    return await services.directory.absences(staff)


@router.put(
    "/staff/{code}/absences/{starts_on}",
    response_model=AbsenceView,
    summary="Put an absence and its cover",
    responses=ADMIN_ERRORS,
)
async def put_absence(
    code: CodePath,
    starts_on: Annotated[date, Path(description="First day away (ISO date).")],
    body: AbsenceIn,
    principal: Admin,
    services: Services,
) -> AbsenceView:
    """Record that someone is away (inclusive dates) and who covers their alerts and cases.

    To end an absence early, put it again with an earlier ``ends_on``.
    """
    entry = AbsenceView(staff=code, starts_on=starts_on, ends_on=body.ends_on, cover=body.cover)
    try:
        saved = await services.directory.put_absence(entry)
    except DirectoryChangeError as error:
        raise _refused(error) from error
    await _audit(services, principal, "directory.put.absence", code=code, starts_on=str(starts_on))
    return saved
