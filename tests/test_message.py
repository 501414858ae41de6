"""Rendering of escalation alerts: wording, dates, escaping, webhook JSON."""

from datetime import UTC, date, datetime
from typing import Any

import pytest

from caseclock.core.actions import AlertState, NotifyAction
from caseclock.core.deadline import Deadline
from caseclock.notify.message import AlertMessage, clock_time, long_date, render_alert
from caseclock.units import Counting, Unit

DASHBOARD = "https://caseclock.example.gov.uk/"


def make_deadline(**overrides: Any) -> Deadline:
    fields: dict[str, Any] = {
        "rule_id": "cfa-45",
        "rule_title": "Child and family assessment",
        "definition_id": "cin",
        "definition_version": "3",
        "start_event_type": "referral_accepted",
        "start_event_id": "EV-0001",
        "start_date": date(2020, 11, 16),
        "amount": 45,
        "unit": Unit.WORKING_DAYS,
        "counting": Counting.DAY_AFTER_IS_DAY_1,
        "calendar_id": "england-and-wales-2021.1",
        "due_date": date(2021, 1, 14),
        "due_at": datetime(2021, 1, 14, 23, 59, 59, tzinfo=UTC),
        "source": "Working Together to Safeguard Children 2018, chapter 1",
    }
    fields.update(overrides)
    return Deadline(**fields)


def make_action(**overrides: Any) -> NotifyAction:
    fields: dict[str, Any] = {
        "key": "CASE-0001/assessment/1/2",
        "case_ref": "CASE-0001",
        "clock_id": "assessment",
        "clock_title": "Child and family assessment",
        "occurrence": 1,
        "level": 2,
        "level_name": "team manager",
        "covers_levels": (2,),
        "roles": ("social_worker", "team_manager"),
        "state": AlertState.OVERDUE,
        "fire_at": datetime(2021, 1, 18, 9, 0, tzinfo=UTC),
        "deadline": make_deadline(),
        "what_to_do": "Complete the assessment and record the outcome in the case system.",
    }
    fields.update(overrides)
    return NotifyAction(**fields)


def render(action: NotifyAction, covering_for: str | None = None) -> AlertMessage:
    return render_alert(action, "Sam Patel", "team_manager", covering_for, DASHBOARD)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2021, 1, 14), "Thursday 14 January 2021"),
        (date(2024, 2, 29), "Thursday 29 February 2024"),
        (date(2025, 12, 1), "Monday 1 December 2025"),
    ],
)
def test_long_date_is_govuk_style(day: date, expected: str) -> None:
    assert long_date(day) == expected


@pytest.mark.parametrize(
    ("hour", "minute", "expected"),
    [(0, 0, "midnight"), (9, 0, "9am"), (12, 0, "midday"), (14, 30, "2:30pm"), (0, 5, "12:05am")],
)
def test_clock_time_is_govuk_style(hour: int, minute: int, expected: str) -> None:
    assert clock_time(datetime(2021, 1, 14, hour, minute, tzinfo=UTC)) == expected


def test_overdue_says_since_when_and_for_how_long() -> None:
    message = render(make_action())

    assert message.subject == "Overdue: Child and family assessment for case CASE-0001 (level 2)"
    assert "Case CASE-0001: Child and family assessment is overdue." in message.text_body
    assert (
        "It was due by the end of Thursday 14 January 2021. "
        "It has been overdue since Friday 15 January 2021, for 4 days." in message.text_body
    )


def test_overdue_on_the_first_day_is_one_day() -> None:
    message = render(make_action(fire_at=datetime(2021, 1, 15, 0, 0, 1, tzinfo=UTC)))

    assert "overdue since Friday 15 January 2021, for 1 day." in message.text_body


@pytest.mark.parametrize(
    ("fire_day", "wording"),
    [(11, "That is in 3 days."), (13, "That is tomorrow."), (14, "That is today.")],
)
def test_due_soon_says_when(fire_day: int, wording: str) -> None:
    action = make_action(
        state=AlertState.DUE_SOON, level=1, fire_at=datetime(2021, 1, fire_day, 9, tzinfo=UTC)
    )

    message = render(action)

    assert message.subject.startswith("Due soon: Child and family assessment for case CASE-0001")
    assert "Case CASE-0001: Child and family assessment is due soon." in message.text_body
    assert f"It is due by the end of Thursday 14 January 2021. {wording}" in message.text_body
    assert "overdue" not in message.text_body.lower()


def test_days_are_counted_on_london_time() -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): the due day has arrived.
    action = make_action(
        state=AlertState.DUE_SOON,
        fire_at=datetime(2021, 6, 30, 23, 30, tzinfo=UTC),
        deadline=make_deadline(
            due_date=date(2021, 7, 1), due_at=datetime(2021, 7, 1, 22, 59, 59, tzinfo=UTC)
        ),
    )

    assert (
        "It is due by the end of Thursday 1 July 2021. That is today." in render(action).text_body
    )


def test_hour_clocks_give_the_time_of_day() -> None:
    action = make_action(
        fire_at=datetime(2021, 1, 14, 19, 45, tzinfo=UTC),
        deadline=make_deadline(
            amount=24,
            unit=Unit.HOURS,
            due_date=date(2021, 1, 14),
            due_at=datetime(2021, 1, 14, 14, 30, tzinfo=UTC),
        ),
    )

    assert (
        "It was due by 2:30pm on Thursday 14 January 2021. "
        "It has been overdue since 2:30pm on Thursday 14 January 2021, for 5 hours."
        in render(action).text_body
    )


def test_says_the_level_and_who_else_was_told() -> None:
    action = make_action(
        covers_levels=(1, 2),
        roles=("social_worker", "team_manager", "service_manager"),
    )

    text = render(action, covering_for="Alex Jones").text_body

    assert "This is escalation level 2: team manager." in text
    assert "It covers levels 1 and 2, which fell due at the same time." in text
    assert "You are getting this as team manager, covering for Alex Jones." in text
    assert "Also told: social worker and service manager." in text


def test_says_when_nobody_else_was_told() -> None:
    text = render(make_action(roles=("team_manager",))).text_body

    assert "No other role has been told by this alert." in text
    assert "covering for" not in text


def test_explains_the_date_says_what_to_do_and_how_to_acknowledge() -> None:
    action = make_action()

    message = render(action)

    link = "https://caseclock.example.gov.uk/escalations/CASE-0001/assessment/1/2"
    for body in (message.text_body, message.html_body):
        assert action.deadline.explain() in body
        assert action.what_to_do in body
        assert link in body
    assert f'<a href="{link}">' in message.html_body


def test_html_escapes_every_value() -> None:
    action = make_action(
        clock_title="Visits <b>& reviews</b>",
        what_to_do='Visit, then record it. <script>alert("x")</script>',
        key="CASE-0001/visit&review/1/2",
    )

    html_body = render(action).html_body

    assert "<script>" not in html_body
    assert "<b>" not in html_body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html_body
    assert "Visits &lt;b&gt;&amp; reviews&lt;/b&gt;" in html_body
    assert 'href="https://caseclock.example.gov.uk/escalations/CASE-0001/visit%26review/1/2"' in (
        html_body
    )


def test_subject_stays_on_one_line() -> None:
    action = make_action(clock_title="Assessment\r\nBcc: someone@example.com")

    subject = render(action).subject

    assert "\r" not in subject
    assert "\n" not in subject
    assert subject == "Overdue: Assessment Bcc: someone@example.com for case CASE-0001 (level 2)"


def test_webhook_json_carries_codes_only() -> None:
    action = make_action(what_to_do="Hold a review & record <the outcome>.")

    webhook = render(action).webhook_json

    assert set(webhook) == {"text", "caseclock"}
    assert webhook["caseclock"] == {
        "key": "CASE-0001/assessment/1/2",
        "case_ref": "CASE-0001",
        "clock_id": "assessment",
        "level": 2,
        "state": "overdue",
        "due_at": "2021-01-14T23:59:59+00:00",
    }
    text = webhook["text"]
    assert isinstance(text, str)
    assert text.startswith("Overdue: Child and family assessment for case CASE-0001 (level 2)\n")
    assert "For Sam Patel, team manager." in text
    assert "Hold a review &amp; record &lt;the outcome&gt;." in text


def test_rendering_is_deterministic_so_a_retry_sends_the_same_alert() -> None:
    first = render(make_action(), covering_for="Alex Jones")
    second = render(make_action(), covering_for="Alex Jones")

    assert first == second
