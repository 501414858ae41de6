"""Write fictional Annex A lists 3 to 9 for tests and the documentation, deterministically.

Every identifier, name and date is invented. Dates are counted back from ``today`` (working
days with the England and Wales calendar, or months), so the same ``today`` always gives the
same files. The lists carry the columns an authority's lists carry, names and dates of birth
included, so tests can check that the importer never copies them anywhere.

    python tests/data/annex_a/make_sample.py --today 2026-11-20 [--folder DIR] [--limit N]

A handful of *named* cases have hand-computed expectations (see tests/test_import_plan.py);
the rest are drawn from a seeded random generator. A few rows are deliberately bad.
"""

import argparse
import csv
import random
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from caseclock.calendar import WorkingCalendar, add_months
from caseclock.calendar_source import build_england_and_wales_calendar

FOLDER = Path(__file__).parent
DEFAULT_TODAY = date(2026, 11, 20)
SEED = 20261120

# Headers as in Ofsted's Annex A template (abridged), including columns the importer must
# never read: names, dates of birth, gender, ethnicity, categories of abuse, placements.
PERSONAL = ["Child Unique ID", "Child Name", "Gender", "Ethnicity", "Date of Birth"]
HEADERS: dict[int, list[str]] = {
    3: [
        *PERSONAL,
        "Date of referral",
        "Referral Source",
        "Referral NFA?",
        "Number of Referrals in Last 12 Months",
        "Allocated Team",
        "Allocated Worker",
    ],
    4: [
        *PERSONAL,
        "Continuous Assessment Start Date",
        "Child Seen During Continuous Assessment",
        "Continuous Assessment Date of Authorisation",
        "Allocated Team",
        "Allocated Worker",
    ],
    5: [
        *PERSONAL,
        "Strategy discussion initiating Section 47 Enquiry Start Date",
        "Was an Initial Child Protection Conference deemed unnecessary?",
        "Date of Initial Child Protection Conference",
        "Did the Initial Child Protection Conference Result in a Child Protection Plan",
        "Number of Section 47 Enquiries in the last 12 months",
        "Allocated Team",
        "Allocated Worker",
    ],
    6: [
        *PERSONAL,
        "CIN Start Date",
        "Primary Need Code",
        "Date Child Was Last Seen",
        "CIN Closure Date",
        "Case Status",
        "Allocated Team",
        "Allocated Worker",
    ],
    7: [
        *PERSONAL,
        "Child Protection Plan Start Date",
        "Initial Category of Abuse",
        "Date of the Last Statutory Visit",
        "Was the Child Seen Alone?",
        "Date of latest review conference",
        "Child Protection Plan End Date",
        "Number of Previous Child Protection Plans",
        "Allocated Team",
        "Allocated Worker",
    ],
    8: [
        *PERSONAL,
        "Date Started to be Looked After",
        "Child's Legal Status",
        "Date of Latest Statutory Review",
        "Date of Last Social Work Visit",
        "Placement postcode",
        "Allocated Team",
        "Allocated Worker",
    ],
    9: [
        *PERSONAL,
        "Allocated Team",
        "Allocated Worker",
        "Allocated Personal Advisor",
        "Eligibility Category",
        "Latest Pathway Plan Review Date",
        "Latest Date of Contact",
    ],
}
FILES = {
    3: "list3_referrals.csv",
    4: "list4_assessments.csv",
    5: "list5_section47.csv",
    6: "list6_children_in_need.csv",
    7: "list7_child_protection.csv",
    8: "list8_children_in_care.csv",
    9: "list9_care_leavers.csv",
}
TEAMS = ["AE", "AW", "CPN", "CPS"]
FIRST = ["Ambry", "Corvin", "Delphine", "Eskra", "Falko", "Ysolde", "Merrit", "Tamsel"]
LAST = ["Quillon", "Varrow", "Brightwater", "Ostrel", "Pennick", "Havilane", "Thorncastle"]


@dataclass
class Lists:
    """Rows of every list, as dictionaries keyed by heading."""

    today: date
    calendar: WorkingCalendar
    rng: random.Random
    rows: dict[int, list[dict[str, str]]] = field(default_factory=lambda: {n: [] for n in FILES})

    def wd(self, days: int) -> str:
        return self.calendar.add_working_days(self.today, -days).strftime("%d/%m/%Y")

    def months(self, months: int, days: int = 0) -> str:
        on = add_months(self.today, -months)
        return (self.calendar.add_working_days(on, -days) if days else on).strftime("%d/%m/%Y")

    def add(self, number: int, case_ref: str, team: str, worker: str, **cells: str) -> None:
        personal = {
            "Child Unique ID": case_ref,
            "Child Name": f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}",
            "Gender": self.rng.choice(["a) Male", "b) Female"]),
            "Ethnicity": "NOBT",
            "Date of Birth": date(
                2010 + self.rng.randrange(14), 1 + self.rng.randrange(12), 3
            ).strftime("%d/%m/%Y"),
            "Allocated Team": team,
            "Allocated Worker": worker,
        }
        headings = {_heading(number, key): value for key, value in cells.items()}
        self.rows[number].append({**personal, **headings})


_SHORT = {
    "referral": "Date of referral",
    "nfa": "Referral NFA?",
    "source": "Referral Source",
    "start": "Continuous Assessment Start Date",
    "authorised": "Continuous Assessment Date of Authorisation",
    "strategy": "Strategy discussion initiating Section 47 Enquiry Start Date",
    "unnecessary": "Was an Initial Child Protection Conference deemed unnecessary?",
    "icpc": "Date of Initial Child Protection Conference",
    "icpc_plan": "Did the Initial Child Protection Conference Result in a Child Protection Plan",
    "cin_start": "CIN Start Date",
    "cin_closure": "CIN Closure Date",
    "status": "Case Status",
    "plan_start": "Child Protection Plan Start Date",
    "visit": "Date of the Last Statutory Visit",
    "review": "Date of latest review conference",
    "plan_end": "Child Protection Plan End Date",
    "abuse": "Initial Category of Abuse",
    "lac_start": "Date Started to be Looked After",
    "lac_review": "Date of Latest Statutory Review",
    "postcode": "Placement postcode",
    "pathway": "Latest Pathway Plan Review Date",
    "contact": "Latest Date of Contact",
}


def _heading(number: int, key: str) -> str:
    heading = _SHORT[key]
    assert heading in HEADERS[number], (number, heading)
    return heading


def named_cases(lists: Lists) -> None:
    """Cases whose clocks are computed by hand in the tests."""
    # The example: plan from 14 months ago, visit 12 working days ago, review 5
    # months ago.
    lists.add(
        7,
        "CP-0001",
        "CPN",
        "SW-CPN-1",
        plan_start=lists.months(14),
        visit=lists.wd(12),
        review=lists.months(5),
        abuse="a) Neglect",
    )
    # Plan at 16 months, review 7 months ago, visit 3 working days ago; list 5 has its s47.
    lists.add(
        5,
        "CP-0002",
        "CPN",
        "SW-CPN-2",
        strategy=lists.months(16, 15),
        unnecessary="No",
        icpc=lists.months(16),
        icpc_plan="Yes",
    )
    lists.add(
        7,
        "CP-0002",
        "CPN",
        "SW-CPN-2",
        plan_start=lists.months(16),
        visit=lists.wd(3),
        review=lists.months(7),
    )
    # Plan past 24 months, never reviewed, never visited.
    lists.add(7, "CP-0003", "CPS", "SW-CPS-1", plan_start=lists.months(25))
    # Strategy discussion 20 working days ago, conference not yet held.
    lists.add(3, "S47-0001", "AW", "SW-AW-1", referral=lists.wd(21), nfa="No")
    lists.add(5, "S47-0001", "AW", "SW-AW-1", strategy=lists.wd(20))
    # Referral 3 working days ago, no decision recorded anywhere.
    lists.add(3, "REF-0001", "AE", "SW-AE-1", referral=lists.wd(3), nfa="No")
    # Assessment from a referral 50 working days ago, not authorised.
    lists.add(3, "ASM-0001", "AE", "SW-AE-2", referral=lists.wd(50), nfa="No")
    lists.add(4, "ASM-0001", "AE", "SW-AE-2", start=lists.wd(49))
    # Child in need plan: the episode began 5 months ago, assessment authorised 4 months ago.
    lists.add(4, "CIN-0001", "AW", "SW-AW-2", start=lists.months(5), authorised=lists.months(4))
    lists.add(
        6, "CIN-0001", "AW", "SW-AW-2", cin_start=lists.months(5), status="c) Child in need plan"
    )


def bad_rows(lists: Lists) -> None:
    """Rows the importer must reject, each for one reason."""
    lists.add(3, "BAD-0001", "AE", "SW-AE-1", referral="31/02/2026", nfa="No")  # no such date
    lists.add(3, "BAD-0002", "Team A (North)", "SW-AE-1", referral=lists.wd(2))  # team format
    lists.add(3, "JaneSmith", "AE", "SW-AE-1", referral=lists.wd(2))  # a name, not a code
    lists.add(
        7, "BAD-0003", "CPN", "SW-CPN-1", plan_start=lists.months(3), visit=lists.months(4)
    )  # visit before the plan started
    lists.add(3, "BAD-0004", "AE", "SW-AE-1", referral=lists.wd(30), nfa="Yes")
    lists.add(4, "BAD-0004", "AE", "SW-AE-1", start=lists.wd(28))  # NFA, then an assessment


def bulk_cases(lists: Lists, count: int) -> None:
    """Cases drawn at random across the paths, lists 8 and 9 included."""
    rng = lists.rng
    kinds = ["referral", "assessment", "s47", "cin", "cp", "cp", "lac", "leaver", "closed"]
    for number in range(1, count + 1):
        ref = f"LA-{number:05d}"
        team = rng.choice(TEAMS)
        worker = f"SW-{team}-{rng.randrange(1, 6)}" if rng.random() > 0.1 else ""
        kind = kinds[number % len(kinds)]
        if kind == "referral":
            nfa = rng.random() < 0.3
            lists.add(
                3,
                ref,
                team,
                worker,
                referral=lists.wd(rng.randrange(0, 8)),
                nfa="Yes" if nfa else "No",
                source="e) 2A: Schools",
            )
        elif kind == "assessment":
            received = rng.randrange(5, 70)
            lists.add(3, ref, team, worker, referral=lists.wd(received), nfa="No")
            started = received - rng.randrange(0, 3)
            done = rng.random() < 0.4
            lists.add(
                4,
                ref,
                team,
                worker,
                start=lists.wd(started),
                authorised=lists.wd(rng.randrange(0, started)) if done else "",
            )
        elif kind == "s47":
            held = rng.randrange(2, 25)
            if rng.random() < 0.5:
                lists.add(3, ref, team, worker, referral=lists.wd(held + 1), nfa="No")
            lists.add(5, ref, team, worker, strategy=lists.wd(held))
        elif kind == "cin":
            began = rng.randrange(2, 12)
            lists.add(
                6, ref, team, worker, cin_start=lists.months(began), status="c) Child in need plan"
            )
            if rng.random() < 0.5:
                lists.add(
                    4,
                    ref,
                    team,
                    worker,
                    start=lists.months(began),
                    authorised=lists.months(began - 1),
                )
        elif kind == "cp":
            months = rng.randrange(1, 26)
            visit = rng.choice([2, 5, 9, 11, 14, 25])
            review = rng.choice([None, 1, 3, 5, 7]) if months > 3 else None
            lists.add(
                7,
                ref,
                team,
                worker,
                plan_start=lists.months(months),
                visit=lists.wd(visit) if visit < 18 * months else "",
                review=lists.months(review) if review and review < months else "",
                abuse=rng.choice(["a) Neglect", "d) Emotional abuse"]),
            )
            lists.add(
                6,
                ref,
                team,
                worker,
                cin_start=lists.months(months, 20),
                status="b) Child Protection plan",
            )
        elif kind == "lac":
            lists.add(
                8,
                ref,
                team,
                worker,
                lac_start=lists.months(rng.randrange(1, 40)),
                lac_review=lists.months(rng.randrange(0, 6)),
                postcode="ZZ99 3WZ",
            )
            lists.add(
                6, ref, team, worker, cin_start=lists.months(40), status="a) Looked after child"
            )
        elif kind == "leaver":
            lists.add(
                9,
                ref,
                team,
                worker,
                pathway=lists.months(rng.randrange(0, 9)),
                contact=lists.wd(rng.randrange(1, 60)),
            )
        else:
            began = rng.randrange(3, 10)
            lists.add(
                6,
                ref,
                team,
                worker,
                cin_start=lists.months(began),
                cin_closure=lists.months(began - 2),
                status="e) Closed episode",
            )


def build(today: date, limit: int | None = None) -> Lists:
    """Every list's rows for ``today``; ``limit`` keeps that many random cases."""
    lists = Lists(
        today=today,
        calendar=build_england_and_wales_calendar(today.year - 4, today.year + 1),
        rng=random.Random(SEED),
    )
    named_cases(lists)
    bad_rows(lists)
    bulk_cases(lists, 180 if limit is None else limit)
    return lists


def write(
    folder: Path, today: date, limit: int | None = None, staff: tuple[str, str] | None = None
) -> list[Path]:
    """Write the seven lists into ``folder``; returns their paths.

    ``staff`` (team, worker) puts every well-formed row in one team, for an engine whose
    directory knows only that team.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lists = build(today, limit)
    if staff is not None:
        for rows in lists.rows.values():
            for row in rows:
                if row["Allocated Team"] in TEAMS:
                    row["Allocated Team"], row["Allocated Worker"] = staff
    paths = []
    for number, name in FILES.items():
        path = folder / name
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=HEADERS[number], restval="")
            writer.writeheader()
            writer.writerows(lists.rows[number])
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--today", type=date.fromisoformat, default=DEFAULT_TODAY)
    parser.add_argument("--folder", type=Path, default=FOLDER)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    for path in write(args.folder, args.today, args.limit):
        print(path)


if __name__ == "__main__":
    main()
