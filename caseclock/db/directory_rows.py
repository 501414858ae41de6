"""Upserts of directory rows, shared by the seed loader and the admin API.

Each writes one service, team, member of staff or absence by its key, replacing what was
there; checking references is the caller's job (the seed checks its own, the API the
database's).
"""

from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from caseclock.db.engine import insert_for
from caseclock.db.models import Absence, Service, Staff, Team


async def upsert_service(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    service_manager: str | None,
    head_of_service: str | None,
) -> None:
    """Create or replace a service area and its management line."""
    stmt = insert_for(session, Service).values(
        code=code,
        name=name,
        service_manager_code=service_manager,
        head_of_service_code=head_of_service,
    )
    set_ = {c.name: c for c in stmt.excluded if c.name != "code"}
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=set_))


async def upsert_team(
    session: AsyncSession, *, code: str, name: str, manager: str | None, service: str
) -> None:
    """Create or replace a team, its manager and its service area."""
    stmt = insert_for(session, Team).values(
        code=code, name=name, manager_code=manager, service_code=service
    )
    set_ = {c.name: c for c in stmt.excluded if c.name != "code"}
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=set_))


async def upsert_staff(
    session: AsyncSession,
    *,
    code: str,
    display_name: str,
    email: str,
    webhook_url: str | None,
    role: str,
    team: str | None,
    active: bool,
) -> None:
    """Create or replace a member of staff."""
    stmt = insert_for(session, Staff).values(
        code=code,
        display_name=display_name,
        email=email,
        webhook_url=webhook_url,
        role=role,
        team_code=team,
        active=active,
    )
    set_ = {c.name: c for c in stmt.excluded if c.name != "code"}
    await session.execute(stmt.on_conflict_do_update(index_elements=["code"], set_=set_))


async def upsert_absence(
    session: AsyncSession, *, staff: str, starts_on: date, ends_on: date, cover: str | None
) -> None:
    """Create or replace the absence of a person starting on a day, with its cover."""
    stmt = insert_for(session, Absence).values(
        staff_code=staff, starts_on=starts_on, ends_on=ends_on, cover_code=cover
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["staff_code", "starts_on"],
            set_={"ends_on": stmt.excluded.ends_on, "cover_code": stmt.excluded.cover_code},
        )
    )
