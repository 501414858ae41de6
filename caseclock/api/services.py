"""What the routes share: the services of one app, and the checks of who may see a case.

``create_app`` builds one :class:`ApiServices` and keeps it in ``app.state``; routes get it
through :func:`get_services`. Nothing here is created at import time.
"""

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from caseclock.api.auth import SEES_EVERYTHING, Authenticator, Principal, Role, forbidden
from caseclock.api.problems import FieldProblem, ProblemError
from caseclock.calendar import local_date
from caseclock.casework import Casework
from caseclock.db import UnknownCaseError
from caseclock.db.deliveries import utc_now
from caseclock.db.directory_admin import DirectoryAdmin
from caseclock.db.oversight import Oversight, Scope
from caseclock.db.tokens import TokenStore
from caseclock.db.views import CaseView
from caseclock.definition.schema import Definition
from caseclock.settings import Settings


@dataclass(frozen=True)
class ApiServices:
    """Everything the routes of one app use, built once by ``create_app``."""

    settings: Settings
    client: Client
    sessions: async_sessionmaker[AsyncSession]
    definitions: dict[str, Definition]
    casework: Casework
    oversight: Oversight
    tokens: TokenStore
    directory: DirectoryAdmin
    authenticator: Authenticator

    async def scope(self, principal: Principal) -> Scope:
        """The cases a caller may see (leaders, admins and case systems: all of them)."""
        if principal.roles & SEES_EVERYTHING:
            return Scope(everything=True)
        if principal.staff_code is None:
            return Scope()
        today = local_date(utc_now())
        teams: frozenset[str] = frozenset()
        if Role.MANAGER in principal.roles:
            teams = (await self.oversight.scope_of_staff(principal.staff_code, True, today)).teams
        # Everyone with a staff code sees the cases allocated to them (and to colleagues
        # they cover), managers included.
        own = await self.oversight.scope_of_staff(principal.staff_code, False, today)
        return Scope(teams=teams, workers=own.workers)

    async def case_for(self, principal: Principal, case_ref: str, action: str) -> CaseView:
        """The case, if it exists and is in the caller's scope.

        A refusal is audited (``<action>.denied``) before the 403 is raised.

        Raises:
            ProblemError: 404 for an unknown case, 403 for a case out of scope.

        """
        try:
            case = await self.casework.case(case_ref)
        except UnknownCaseError as error:
            raise unknown_case(case_ref) from error
        await self.check_scope(principal, case.case_ref, case.team, case.allocated_worker, action)
        return case

    async def check_scope(
        self,
        principal: Principal,
        case_ref: str,
        team: str,
        allocated_worker: str | None,
        action: str,
    ) -> None:
        """Refuse (403, audited) a case of this team and worker outside the caller's scope."""
        if (await self.scope(principal)).allows(team, allocated_worker):
            return
        await self.casework.audit(
            principal.actor, f"{action}.denied", case_ref, via=principal.via, team=team
        )
        raise forbidden(
            f"case {case_ref} is outside your scope: managers see the cases of the teams "
            "they manage, practitioners the cases allocated to them"
        )

    async def ready(self) -> dict[str, str]:
        """Whether the database and Temporal answer, check by check."""
        checks: dict[str, str] = {}
        try:
            async with self.sessions() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as error:  # any failure means not ready
            checks["database"] = f"unreachable ({type(error).__name__})"
        try:
            await self.client.service_client.check_health()
            checks["temporal"] = "ok"
        except Exception as error:  # any failure means not ready
            checks["temporal"] = f"unreachable ({type(error).__name__})"
        return checks


def unknown_case(case_ref: str) -> ProblemError:
    """The 404 problem for a case nobody has recorded."""
    return ProblemError(
        404,
        "unknown-case",
        "Unknown case",
        f"no case has the reference {case_ref!r}; start it with POST /api/v1/cases",
        [FieldProblem(field="case_ref", reason="no case has this reference")],
    )


def get_services(request: Request) -> ApiServices:
    """FastAPI dependency: the app's services."""
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(get_services)]
