"""Scenario 8, simulation speed: the pure core over a synthetic national year.

A sample of ``--n`` referrals (default 10,000) is drawn to follow England's 2024-25 rates
(``shared/domain/TIMESCALES.md``: 632,830 referrals, 230,590 section 47 enquiries, 72,100
initial conferences, 61,840 plans; 85.7% of assessments within 45 working days, 81.4% of
conferences within 15) and each case is run through the core exactly as ``CaseWorkflow``
runs it: ``apply_event`` for every event, and ``due_alerts`` at every ``next_wakeup``
before the next event. A plan lasts 3 to 18 months, with a visit every 10 working days, a
core group every 4 weeks and reviews at 3 months and every 6 months; the case closes after
its assessment or when the plan ends. Cases per second (one core) are measured on the sample;
the national year's time is extrapolated from it (631,000 / rate), and says so.

Run: ``python -m bench.s8_simulation --n 10000 --repeats 3``.
"""

import argparse
import random
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from bench import scenario
from bench.arms import child_protection
from caseclock.calendar import LONDON, WorkingCalendar, add_months
from caseclock.calendar_source import build_england_and_wales_calendar
from caseclock.core.engine import apply_event, due_alerts, next_wakeup, start_case
from caseclock.core.events import CaseEvent
from caseclock.definition.schema import Definition

NAME = "s8_simulation"
TITLE = "8. Simulation speed (pure core)"
DEFAULTS = {"n": 10_000, "repeats": 3, "arms": ("caseclock",)}
HEADLINE = ["cases_per_s", "events_per_s", "national_year_s"]
NATIONAL_REFERRALS = 632_830
S47_SHARE = 230_590 / NATIONAL_REFERRALS
ICPC_SHARE_OF_S47 = 72_100 / 230_590
PLAN_SHARE_OF_ICPC = 61_840 / 72_100
ASSESSMENT_ON_TIME = 0.857
ICPC_ON_TIME = 0.814
NO_ASSESSMENT_SHARE = 0.10  # referrals closed at the decision (no further action, early help)
YEAR_START = date(2025, 4, 1)

Story = list[tuple[date, str, str | None]]


def case_story(rng: random.Random, calendar: WorkingCalendar, start: date) -> Story:
    """One referral's events, drawn at the national rates."""
    wd = calendar.add_working_days
    story: Story = [(start, "referral_received", None)]
    decided = wd(start, 1)
    draw = rng.random()
    if draw < NO_ASSESSMENT_SHARE:
        story.append((decided, "referral_decision", "no_further_action"))
        return story
    if draw >= NO_ASSESSMENT_SHARE + S47_SHARE:
        story.append((decided, "referral_decision", "assessment"))
        return _assessment_and_close(rng, calendar, story, start)
    story.append((decided, "referral_decision", "strategy_discussion"))
    story.append((decided, "strategy_discussion_held", "s47"))
    if rng.random() >= ICPC_SHARE_OF_S47:
        story.append((wd(decided, rng.randint(5, 15)), "s47_concluded", "not_substantiated"))
        return _assessment_and_close(rng, calendar, story, start)
    icpc_days = rng.randint(8, 15) if rng.random() < ICPC_ON_TIME else rng.randint(16, 25)
    icpc = wd(decided, icpc_days)
    story.append((wd(decided, min(icpc_days - 1, 10)), "s47_concluded", "icpc"))
    if rng.random() >= PLAN_SHARE_OF_ICPC:
        story.append((icpc, "icpc_held", "no_plan"))
        return _assessment_and_close(rng, calendar, story, start)
    story.append((icpc, "icpc_held", "cp_plan"))
    return _plan(rng, calendar, story, icpc)


def _assessment_and_close(
    rng: random.Random, calendar: WorkingCalendar, story: Story, referred: date
) -> Story:
    days = rng.randint(10, 45) if rng.random() < ASSESSMENT_ON_TIME else rng.randint(46, 70)
    done = max(calendar.add_working_days(referred, days), story[-1][0])
    story.append((done, "assessment_completed", None))
    story.append((done, "case_closed", None))
    return story


def _plan(rng: random.Random, calendar: WorkingCalendar, story: Story, icpc: date) -> Story:
    end = add_months(icpc, rng.randint(3, 18))
    events: Story = []
    visit = calendar.add_working_days(icpc, rng.randint(8, 11))
    while visit < end:
        events.append((visit, "cp_visit", None))
        visit = calendar.add_working_days(visit, rng.randint(8, 12))
    core_group = calendar.add_working_days(icpc, 10)
    while core_group < end:
        events.append((core_group, "core_group_held", None))
        core_group += timedelta(weeks=4)
    review = add_months(icpc, 3)
    while review < end:
        events.append((review, "rcpc_held", "continue"))
        review = add_months(review, 6)
    events.sort(key=lambda item: item[0])
    events.append((max(end, events[-1][0] if events else end), "rcpc_held", "end_step_down_cin"))
    return story + events


def run_case(
    definition: Definition, calendar: WorkingCalendar, ref: str, story: Story
) -> tuple[int, int]:
    """Run one case through the core as the workflow would; (events, alerts) handled."""
    state = start_case(definition, ref)
    alerts = 0
    for number, (day, event_type, outcome) in enumerate(story):
        at = datetime.combine(day, clock_time(17), tzinfo=LONDON).astimezone(UTC)
        wake = next_wakeup(state)
        while wake is not None and wake <= at:
            due = due_alerts(definition, state, wake)
            state = due.state
            alerts += len(due.actions)
            wake = next_wakeup(state)
        event = CaseEvent(
            event_id=f"{ref}-{number}",
            type=event_type,
            effective_date=day,
            recorded_at=at,
            recorded_by="SW-1",
            outcome=outcome,
        )
        state = apply_event(definition, state, event, calendar, at).state
    return len(story), alerts


async def run_once(args: argparse.Namespace, folder: Path) -> dict[str, dict[str, Any]]:
    """Draw the sample, then time the core over it."""
    definition = child_protection()
    calendar = build_england_and_wales_calendar(2024, 2030)
    rng = random.Random(2025)
    stories = [
        case_story(rng, calendar, YEAR_START + timedelta(days=rng.randrange(365)))
        for _ in range(args.n)
    ]
    began = time.process_time()
    events = alerts = 0
    for number, story in enumerate(stories):
        handled, fired = run_case(definition, calendar, f"SIM-{number:07d}", story)
        events += handled
        alerts += fired
    seconds = time.process_time() - began
    rate = args.n / seconds
    return {
        "caseclock": {
            "cases_per_s": round(rate, 1),
            "events_per_s": round(events / seconds, 1),
            "alerts_per_case": round(alerts / args.n, 2),
            "events_per_case": round(events / args.n, 2),
            "national_year_s": round(NATIONAL_REFERRALS / rate, 1),
            "sample_cases": args.n,
            "extrapolated": True,
        }
    }


if __name__ == "__main__":
    scenario.main(NAME, TITLE, DEFAULTS, run_once, HEADLINE)
