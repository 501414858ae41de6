"""A deadline's terms are cached by content, and the definition's serialized form is unchanged.

``DeadlineSpec.terms()`` is asked for on every event, so the one-term form is built once
per distinct (amount, unit, counting, from) and shared. Nothing is stored on the
definition, which travels in workflow histories.
"""

from pathlib import Path

from caseclock.definition.loader import load_definition
from caseclock.definition.schema import DeadlineSpec, DeadlineTerm, Definition

DEFINITION = load_definition(Path(__file__).parents[1] / "definitions" / "child-protection.yaml")


def built_afresh(spec: DeadlineSpec) -> tuple[DeadlineTerm, ...]:
    """The terms as they were built before the cache: validated on every call."""
    if spec.sooner_of:
        return spec.sooner_of
    term = {"amount": spec.amount, "unit": spec.unit, "counting": spec.counting}
    return (DeadlineTerm.model_validate({**term, "from": spec.from_event}),)


def test_every_clock_has_the_terms_it_had_before_the_cache() -> None:
    for clock in DEFINITION.clocks.values():
        terms = clock.deadline.terms()

        assert terms == built_afresh(clock.deadline)
        assert [t.model_dump(by_alias=True) for t in terms] == [
            t.model_dump(by_alias=True) for t in built_afresh(clock.deadline)
        ]
        assert clock.deadline.terms() is terms  # asked again: not validated again


def test_a_spec_with_different_content_never_gets_another_specs_terms() -> None:
    spec = DeadlineSpec.model_validate({"amount": 15, "unit": "working_days"})
    spec.terms()
    other = spec.model_copy(update={"amount": 16})
    counted_from = DeadlineSpec.model_validate(
        {"amount": 15, "unit": "working_days", "from": "referral_received"}
    )

    assert other.terms()[0].amount == 16
    assert counted_from.terms()[0].from_event == "referral_received"
    assert spec.terms()[0].amount == 15
    assert spec.terms()[0].from_event is None


def test_asking_for_terms_leaves_the_definition_as_it_travels() -> None:
    fresh = Definition.model_validate_json(DEFINITION.model_dump_json())
    before = fresh.model_dump_json(by_alias=True)
    for clock in fresh.clocks.values():
        clock.deadline.terms()

    assert fresh.model_dump_json(by_alias=True) == before
    assert fresh == DEFINITION
    assert set(DeadlineSpec.model_fields) == {
        "amount",
        "unit",
        "counting",
        "from_event",
        "sooner_of",
        "window_opens",
    }


def test_counts_hours_agrees_with_the_units_of_the_terms() -> None:
    def deadline(raw: dict[str, object]) -> DeadlineSpec:
        return DeadlineSpec.model_validate(raw)

    hours = {"amount": 72, "unit": "hours"}
    days = {"amount": 5, "unit": "working_days"}
    specs = [clock.deadline for clock in DEFINITION.clocks.values()] + [
        deadline(hours),
        deadline(days),
        deadline({"sooner_of": [days, hours]}),
        deadline({"sooner_of": [days, {"amount": 2, "unit": "weeks"}]}),
    ]

    for spec in specs:
        assert spec.counts_hours() == any(term.unit.value == "hours" for term in spec.terms())
    assert [spec.counts_hours() for spec in specs[-4:]] == [True, False, True, False]
