"""Who is told: the demo directory loaded into real databases, then resolved day by day.

The module loads ``caseclock/demo/directory.yaml`` once per backend. Tests that add absences
use their own dates, so they cannot change what another test sees.
"""

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import event, func, select

import caseclock
from caseclock.db.models import Absence, Service, Staff, Team
from caseclock.directory import (
    UNALLOCATED,
    AbsenceSeed,
    Directory,
    DirectorySeed,
    Recipient,
    ResolveRequest,
    TeamSeed,
    load_directory,
)
from tests.db_fixtures import Database, database, unique

__all__ = ["database"]

DEMO = Path(caseclock.__file__).parent / "demo" / "directory.yaml"
ORDINARY_DAY = date(2026, 6, 10)
ADEYEMI_ON_LEAVE = date(2026, 8, 5)  # TM-CPN is away, covered by TM-CIC (in the demo file)

EVERYONE = ("social_worker", "team_manager", "service_manager", "head_of_service", "director")


@pytest.fixture(scope="module")
def seed() -> DirectorySeed:
    return DirectorySeed.from_yaml(DEMO)


@pytest.fixture(scope="module")
async def directory(database: Database, seed: DirectorySeed) -> Directory:
    await load_directory(database.sessions, seed)
    return Directory(database.sessions)


def told(recipients: Sequence[Recipient]) -> list[tuple[str, str, str | None]]:
    return [(r.staff_code, r.role, r.covering_for) for r in recipients]


async def away(database: Database, seed: DirectorySeed, *absences: AbsenceSeed) -> None:
    """Load the demo directory again with extra absences."""
    await load_directory(database.sessions, seed.model_copy(update={"absences": list(absences)}))


async def test_the_demo_authority_loads_and_loading_again_changes_nothing(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    async def counts() -> list[int]:
        async with database.sessions() as session:
            return [
                (await session.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Service, Team, Staff, Absence)
            ]

    before = await counts()
    await load_directory(database.sessions, seed)
    assert await counts() == before
    assert before[:3] == [2, 4, 22]
    assert before[3] >= 1


async def test_loading_again_takes_the_latest_values(
    database: Database, seed: DirectorySeed
) -> None:
    changed = seed.model_copy(deep=True)
    changed.staff[-1].email = "new.address@example.org"
    await load_directory(database.sessions, changed)
    async with database.sessions() as session:
        row = await session.get(Staff, changed.staff[-1].code)
        assert row is not None
        assert row.email == "new.address@example.org"
    await load_directory(database.sessions, seed)


async def test_everyone_up_the_line_of_an_allocated_case(directory: Directory) -> None:
    recipients = await directory.resolve("AE", "SW-AE-2", EVERYONE, ORDINARY_DAY)
    assert told(recipients) == [
        ("SW-AE-2", "social_worker", None),
        ("TM-AE", "team_manager", None),
        ("SM-ASSESS", "service_manager", None),
        ("HOS-ASSESS", "head_of_service", None),
        ("DIR", "director", None),
    ]
    assert recipients[0].display_name == "Ama Mensah"
    assert recipients[0].email == "ama.mensah@example.org"
    # The demo directory has no webhooks (nothing would answer); tests/engine_stack.py seeds
    # one on loopback and tests/test_case_workflow.py checks its delivery.
    assert recipients[1].webhook_url is None


async def test_unallocated_case_goes_to_the_team_manager_once(directory: Directory) -> None:
    recipients = await directory.resolve(
        "AW", None, ["social_worker", "team_manager"], ORDINARY_DAY
    )
    assert told(recipients) == [("TM-AW", "social_worker", UNALLOCATED)]


async def test_absent_manager_is_replaced_by_their_cover(directory: Directory) -> None:
    roles = ["social_worker", "team_manager"]
    on_leave = await directory.resolve("CPN", "SW-CPN-1", roles, ADEYEMI_ON_LEAVE)
    back = await directory.resolve("CPN", "SW-CPN-1", roles, date(2026, 8, 17))

    assert told(on_leave) == [
        ("SW-CPN-1", "social_worker", None),
        ("TM-CIC", "team_manager", "TM-CPN"),
    ]
    assert told(back) == [("SW-CPN-1", "social_worker", None), ("TM-CPN", "team_manager", None)]


async def test_absent_manager_without_cover_falls_to_their_line_manager(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    day = date(2027, 1, 6)
    await away(database, seed, AbsenceSeed(staff="TM-AW", starts_on=day, ends_on=day))

    recipients = await directory.resolve("AW", "SW-AW-1", ["team_manager"], day)

    assert told(recipients) == [("SM-ASSESS", "team_manager", "TM-AW")]


async def test_absent_worker_without_cover_falls_to_their_team_manager(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    day = date(2027, 2, 3)
    await away(database, seed, AbsenceSeed(staff="SW-AE-3", starts_on=day, ends_on=day))

    recipients = await directory.resolve("AE", "SW-AE-3", ["social_worker", "team_manager"], day)

    assert told(recipients) == [("TM-AE", "social_worker", "SW-AE-3")]


async def test_a_cover_who_is_also_away_passes_to_the_line(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    day = date(2027, 3, 3)
    await away(
        database,
        seed,
        AbsenceSeed(staff="TM-AE", starts_on=day, ends_on=day, cover="TM-AW"),
        AbsenceSeed(staff="TM-AW", starts_on=day, ends_on=day, cover="TM-AE"),
    )

    recipients = await directory.resolve("AE", "SW-AE-1", ["team_manager"], day)

    assert told(recipients) == [("SM-ASSESS", "team_manager", "TM-AE")]


async def test_people_reached_through_several_roles_are_told_once(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    day = date(2027, 4, 7)
    await away(database, seed, AbsenceSeed(staff="SM-CPCIC", starts_on=day, ends_on=day))

    recipients = await directory.resolve(
        "CIC", "SW-CIC-2", ["team_manager", "service_manager", "head_of_service", "director"], day
    )

    assert told(recipients) == [
        ("TM-CIC", "team_manager", None),
        ("HOS-CPCIC", "service_manager", "SM-CPCIC"),
        ("DIR", "director", None),
    ]


async def test_a_worker_unknown_to_the_directory_goes_to_the_team_manager(
    directory: Directory,
) -> None:
    recipients = await directory.resolve("CPN", "SW-LEFT-9", ["social_worker"], ORDINARY_DAY)
    assert told(recipients) == [("TM-CPN", "social_worker", "SW-LEFT-9")]


async def test_a_vacant_post_goes_to_the_next_post_up(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    team = unique("VAC")
    vacant = TeamSeed(code=team, name="Vacant team", service="ASSESS", manager=None)
    await load_directory(database.sessions, seed.model_copy(update={"teams": [vacant]}))

    recipients = await directory.resolve(
        team, None, ["social_worker", "team_manager"], ORDINARY_DAY
    )

    assert told(recipients) == [("SM-ASSESS", "social_worker", UNALLOCATED)]


async def test_unknown_roles_are_refused(directory: Directory) -> None:
    with pytest.raises(ValueError, match="unknown role\\(s\\) 'caretaker'"):
        await directory.resolve("AE", "SW-AE-1", ["social_worker", "caretaker"], ORDINARY_DAY)


def test_a_seed_with_broken_references_lists_every_problem(seed: DirectorySeed) -> None:
    data = seed.model_dump(mode="json")
    data["teams"][0]["service"] = "NOWHERE"
    data["staff"][0]["team"] = "NO-TEAM"
    data["absences"] = [
        {"staff": "GHOST", "starts_on": "2026-05-02", "ends_on": "2026-05-01", "cover": "GHOST"}
    ]
    data["staff"].append(data["staff"][1])

    with pytest.raises(ValidationError) as raised:
        DirectorySeed.model_validate(data)

    message = str(raised.value)
    for expected in (
        "teams[0].service: unknown service 'NOWHERE'",
        "staff[0].team: unknown team 'NO-TEAM'",
        "absences[0].staff: unknown staff code 'GHOST'",
        "absences[0]: ends_on is before starts_on",
        "absences[0]: 'GHOST' cannot cover themselves",
        "staff: code 'HOS-ASSESS' appears more than once",
    ):
        assert expected in message


async def test_resolving_many_gives_what_resolving_each_gives(directory: Directory) -> None:
    requests = [
        ResolveRequest("AE", "SW-AE-2", EVERYONE, ORDINARY_DAY),
        ResolveRequest("AW", None, ("social_worker", "team_manager"), ORDINARY_DAY),
        ResolveRequest("CPN", "SW-CPN-1", ("social_worker", "team_manager"), ADEYEMI_ON_LEAVE),
        ResolveRequest("CPN", "SW-LEFT-9", ("social_worker",), ORDINARY_DAY),
    ]

    together = await directory.resolve_many(requests * 3)

    one_by_one = [await directory.resolve(*request) for request in requests]
    assert together == one_by_one * 3


async def test_a_batch_reads_each_row_once(database: Database, directory: Directory) -> None:
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    request = ResolveRequest("CIC", "SW-CIC-2", EVERYONE, ORDINARY_DAY)
    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        await directory.resolve_many([request])
        alone = len(statements)
        statements.clear()
        others = [request._replace(allocated_worker=f"SW-CIC-{n}") for n in (1, 2, 3)]
        await directory.resolve_many([request] * 50 + others)
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)

    # The same team, service and director: only the other workers and their absences are new.
    assert len(statements) <= alone + 2 * len(others)


async def test_a_cached_resolution_lasts_its_time_to_live(
    database: Database, seed: DirectorySeed, directory: Directory
) -> None:
    clock = [1000.0]
    roles = ["team_manager"]
    day = date(2027, 5, 5)
    timed, cleared = (
        Directory(database.sessions, cache_ttl=timedelta(seconds=60), now=lambda: clock[0])
        for _ in range(2)
    )
    before = [await cache.resolve("AE", "SW-AE-1", roles, day) for cache in (timed, cleared)]
    await away(database, seed, AbsenceSeed(staff="TM-AE", starts_on=day, ends_on=day))

    clock[0] += 59
    still = await timed.resolve("AE", "SW-AE-1", roles, day)
    cleared.clear_cache()
    after_clearing = await cleared.resolve("AE", "SW-AE-1", roles, day)
    clock[0] += 2
    after_expiry = await timed.resolve("AE", "SW-AE-1", roles, day)

    present = [("TM-AE", "team_manager", None)]
    assert [told(found) for found in before] == [present, present]
    assert told(still) == present
    covered = [("SM-ASSESS", "team_manager", "TM-AE")]
    assert told(after_clearing) == told(after_expiry) == covered
