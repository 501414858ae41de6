"""One parsed Definition per content: sharing, exact keys, the bounded cache, memory saved."""

import functools
import gc
import json
import os
import sys
import threading
import tracemalloc
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The sandbox re-imports this module for the workflow below; the definition modules come
# from outside it, as workflows/case.py takes workflows.case_types, so every run shares
# the one cache.
with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, BeforeValidator, ValidationError, WrapValidator

    from caseclock.calendar import CALENDARS, Closure, WorkingCalendar
    from caseclock.calendar_source import build_england_and_wales_calendar
    from caseclock.definition.intern import DEFINITIONS, intern_definition
    from caseclock.definition.loader import load_definition
    from caseclock.definition.schema import Definition, TrackSpec
    from caseclock.interning import ContentCache, content_key, is_plain_data
    from workflows.case_types import Allocation, CaseWorkflowInput


@functools.cache
def the_definition() -> Definition:
    return load_definition(
        Path(__file__).resolve().parent.parent / "definitions/child-protection.yaml"
    )


@functools.cache
def the_calendar() -> WorkingCalendar:
    return build_england_and_wales_calendar(2025, 2034)


InternedDefinition = Annotated[Definition, WrapValidator(intern_definition)]


class SmallInput(BaseModel):
    """A small input holding a definition the way a case input would."""

    case_ref: str
    definition: InternedDefinition


def _text_to_data(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


class PlainCaseInput(CaseWorkflowInput):
    """CaseWorkflowInput without sharing: every input parses its own definition and calendar."""

    definition: Annotated[Definition, BeforeValidator(_text_to_data)]
    calendar: WorkingCalendar


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    DEFINITIONS.clear()
    CALENDARS.clear()
    yield
    DEFINITIONS.clear()
    CALENDARS.clear()


def definition_data(definition: Definition | None = None) -> dict[str, Any]:
    # What the definition looks like after a round trip through a JSON payload.
    data: dict[str, Any] = json.loads(
        (definition or the_definition()).model_dump_json(by_alias=True)
    )
    return data


def small_json(data: dict[str, Any], case_ref: str = "LA-0001") -> str:
    return json.dumps({"case_ref": case_ref, "definition": data})


def case_payload(case_ref: str = "LA-0001") -> Payload:
    value = CaseWorkflowInput(
        case_ref=case_ref,
        allocation=Allocation(team="TM-AE", worker="SW-0042"),
        definition=the_definition(),
        calendar=the_calendar(),
    )
    (payload,) = pydantic_data_converter.payload_converter.to_payloads([value])
    return payload


def test_a_case_input_carries_its_definition_as_json_text() -> None:
    payload = json.loads(case_payload().data)

    assert isinstance(payload["definition"], str)
    assert Definition.model_validate_json(payload["definition"]) == the_definition()


def test_an_input_with_the_definition_as_an_object_still_decodes_and_shares() -> None:
    # As inputs were written before the text form (recorded histories hold them).
    payload = json.loads(case_payload().data)
    as_object = {**payload, "definition": json.loads(payload["definition"])}

    old = CaseWorkflowInput.model_validate_json(json.dumps(as_object))
    again = CaseWorkflowInput.model_validate_json(json.dumps(as_object))
    new = CaseWorkflowInput.model_validate_json(case_payload().data)

    assert old.definition is again.definition
    assert old.definition == new.definition == the_definition()


def test_definition_text_that_is_not_a_definition_is_refused_clearly() -> None:
    payload = json.loads(case_payload().data)
    for text, reason in [
        ("{not json", "not valid JSON text"),
        ("[1, 2]", "not an object"),
        ('{"id": "x"}', "Field required"),
    ]:
        with pytest.raises(ValidationError, match=reason):
            CaseWorkflowInput.model_validate_json(json.dumps({**payload, "definition": text}))
    assert len(DEFINITIONS) == 0


def test_two_parses_of_the_same_json_return_the_identical_definition() -> None:
    first = SmallInput.model_validate_json(small_json(definition_data(), "LA-0001"))
    second = SmallInput.model_validate_json(small_json(definition_data(), "LA-0002"))

    assert first.definition is second.definition
    assert (DEFINITIONS.misses, DEFINITIONS.hits, len(DEFINITIONS)) == (1, 1, 1)


def test_case_inputs_decoded_by_temporals_converter_share_the_definition() -> None:
    converter = pydantic_data_converter.payload_converter

    (first,) = converter.from_payloads([case_payload("LA-0001")], [CaseWorkflowInput])
    (second,) = converter.from_payloads([case_payload("LA-0002")], [CaseWorkflowInput])
    (plain,) = converter.from_payloads([case_payload("LA-0003")], [PlainCaseInput])

    assert first.definition is second.definition
    assert first.calendar is second.calendar
    assert (first.case_ref, second.case_ref) == ("LA-0001", "LA-0002")
    assert (CALENDARS.misses, CALENDARS.hits) == (1, 1)
    # Without the validators each input parses its own copies.
    assert plain.definition is not first.definition
    assert plain.calendar is not first.calendar
    assert (plain.definition, plain.calendar) == (first.definition, first.calendar)


def test_a_calendar_with_other_days_is_not_shared() -> None:
    closed = Closure(day=the_calendar().bank_holidays[0].day.replace(day=2), name="Closure day")
    other = WorkingCalendar.from_days(
        region="england-and-wales",
        source="test",
        first_year=2025,
        last_year=2034,
        bank_holidays=the_calendar().bank_holidays,
        local_closures=(closed,),
    )
    value = CaseWorkflowInput(
        case_ref="LA-0001",
        allocation=Allocation(team="TM-AE"),
        definition=the_definition(),
        calendar=other,
    )
    (payload,) = pydantic_data_converter.payload_converter.to_payloads([value])

    converter = pydantic_data_converter.payload_converter
    (usual,) = converter.from_payloads([case_payload("LA-0002")], [CaseWorkflowInput])
    (closure,) = converter.from_payloads([payload], [CaseWorkflowInput])

    assert closure.calendar == other
    assert usual.calendar == the_calendar()
    assert closure.calendar is not usual.calendar
    assert not closure.calendar.is_working_day(closed.day)
    assert len(CALENDARS) == 2


def test_a_calendar_that_is_not_one_is_refused_and_not_kept() -> None:
    payload = json.loads(case_payload().data)
    broken = {**payload["calendar"], "first_year": 2040}  # after its last year
    with pytest.raises(ValidationError, match="calendar"):
        CaseWorkflowInput.model_validate_json(json.dumps({**payload, "calendar": broken}))
    assert len(CALENDARS) == 0


def test_different_content_gives_different_definitions() -> None:
    changed = definition_data()
    changed["title"] += " (amended)"

    original = SmallInput.model_validate_json(small_json(definition_data()))
    amended = SmallInput.model_validate_json(small_json(changed))

    assert original.definition is not amended.definition
    assert amended.definition.title.endswith("(amended)")
    assert original.definition == the_definition()


def test_the_same_clocks_in_another_order_are_not_shared() -> None:
    # The core walks clocks in order, so the order is part of the content.
    reordered = definition_data()
    reordered["clocks"] = dict(reversed(reordered["clocks"].items()))

    original = SmallInput.model_validate_json(small_json(definition_data()))
    other = SmallInput.model_validate_json(small_json(reordered))

    assert original.definition is not other.definition
    assert list(original.definition.clocks) == list(the_definition().clocks)
    assert list(other.definition.clocks) == list(reversed(the_definition().clocks))


def test_a_shared_definition_round_trips_unchanged() -> None:
    converter = pydantic_data_converter.payload_converter
    (first,) = converter.from_payloads([case_payload()], [CaseWorkflowInput])
    (second,) = converter.from_payloads([case_payload()], [CaseWorkflowInput])

    assert second.definition is first.definition
    assert second.definition.model_dump() == the_definition().model_dump()
    assert second.definition.model_dump_json() == the_definition().model_dump_json()
    assert second.definition == the_definition()
    # And the whole input encodes to the same payload it was decoded from.
    (again,) = converter.to_payloads([CaseWorkflowInput.model_validate(dict(second))])
    assert again.data == case_payload().data


def test_a_definition_instance_is_returned_as_it_is() -> None:
    given = SmallInput(case_ref="LA-0001", definition=the_definition())

    assert given.definition is the_definition()
    assert len(DEFINITIONS) == 0


def test_plain_python_data_is_shared_too() -> None:
    first = SmallInput.model_validate({"case_ref": "LA-0001", "definition": definition_data()})
    second = SmallInput.model_validate({"case_ref": "LA-0002", "definition": definition_data()})

    assert first.definition is second.definition
    assert first.definition == the_definition()


def test_python_data_holding_other_objects_is_parsed_but_not_shared() -> None:
    data = definition_data()
    track_id = next(iter(data["tracks"]))
    data["tracks"][track_id] = TrackSpec.model_validate(data["tracks"][track_id])

    first = SmallInput.model_validate({"case_ref": "LA-0001", "definition": data})
    second = SmallInput.model_validate({"case_ref": "LA-0002", "definition": data})

    assert first.definition == second.definition == the_definition()
    assert first.definition is not second.definition
    assert len(DEFINITIONS) == 0


def test_an_invalid_definition_is_refused_and_not_kept() -> None:
    data = definition_data()
    data["version"] = "not a version!"

    for _ in range(2):
        with pytest.raises(ValidationError, match=r"definition\.version"):
            SmallInput.model_validate_json(small_json(data))

    assert len(DEFINITIONS) == 0
    assert DEFINITIONS.misses == 2


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"a": [1, 2.5, "x", True, None, {"b": []}]}, True),
        ({"a": (1, 2)}, False),
        ({1: "a"}, False),
        ({True: "a"}, False),
        ({"a": TrackSpec(title="t", initial="s", stages={"s": {"title": "S"}})}, False),
    ],
    ids=["json", "tuple", "int-key", "bool-key", "model"],
)
def test_is_plain_data(value: Any, plain: bool) -> None:
    assert is_plain_data(value) is plain


def test_deeply_nested_data_is_not_plain() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(sys.getrecursionlimit() + 10):
        node["a"] = {}
        node = node["a"]

    assert is_plain_data(deep) is False


def test_content_keys_keep_order_and_types_that_json_text_would_fold() -> None:
    assert content_key({"a": 1, "b": 2}) != content_key({"b": 2, "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 1.0})
    assert content_key({"a": 1}) != content_key({"a": True})
    assert content_key({"a": "1"}) != content_key({"a": 1})
    assert content_key(definition_data()) == content_key(definition_data())


def test_the_cache_keeps_the_most_recently_used() -> None:
    cache = ContentCache[Definition](maxsize=2)
    made: list[str] = []

    def parse(name: str) -> Definition:
        made.append(name)
        return the_definition().model_copy(update={"title": name})

    a = cache.get_or_parse(b"a", lambda: parse("a"))
    cache.get_or_parse(b"b", lambda: parse("b"))
    assert cache.get_or_parse(b"a", lambda: parse("a again")) is a  # a is now the newest
    cache.get_or_parse(b"c", lambda: parse("c"))  # evicts b, the least recently used

    assert cache.get_or_parse(b"a", lambda: parse("a again")) is a
    cache.get_or_parse(b"b", lambda: parse("b again"))
    assert made == ["a", "b", "c", "b again"]
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (2, 4)


def test_the_default_cache_is_bounded() -> None:
    for number in range(40):
        data = definition_data()
        data["title"] = f"Variant {number}"
        SmallInput.model_validate_json(small_json(data))

    assert len(DEFINITIONS) == 32


def test_a_cache_needs_room_for_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ContentCache[Definition](maxsize=0)


def test_threads_parsing_the_same_content_at_once_share_one_instance() -> None:
    text = small_json(definition_data())
    start = threading.Barrier(8)

    def parse(_: int) -> Definition:
        start.wait()
        return SmallInput.model_validate_json(text).definition

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(parse, range(8)))

    assert all(result is results[0] for result in results)
    assert len(DEFINITIONS) == 1


def retained_bytes(model: type[CaseWorkflowInput], data: bytes, count: int) -> int:
    """Bytes still allocated after parsing ``count`` case inputs and keeping them all."""
    DEFINITIONS.clear()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [model.model_validate_json(data) for _ in range(count)]
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return retained


def test_memory_for_case_inputs_with_and_without_sharing() -> None:
    # The worker's cache keeps every cached case's input alive, as this list does. Under
    # tracemalloc each parse is slow, so the suite keeps 100 (about 3 s);
    # CASECLOCK_INTERN_MEMORY_COUNT=500 gives the figure reported in the commit.
    data = case_payload().data
    count = int(os.environ.get("CASECLOCK_INTERN_MEMORY_COUNT", "100"))

    plain = retained_bytes(PlainCaseInput, data, count)
    shared = retained_bytes(CaseWorkflowInput, data, count)

    print(
        f"\n{count} case inputs: {plain / 2**20:.1f} MiB ({plain / count / 1024:.0f} KiB each) "
        f"without sharing, {shared / 2**20:.1f} MiB ({shared / count / 1024:.0f} KiB each) "
        f"with one shared definition and calendar"
    )
    # The definition and the calendar are most of an input (about 205 and 45 of 250 KiB);
    # the case's own values are the rest.
    assert shared < plain * 0.1


@workflow.defn
class DefinitionIdentityWorkflow:
    """Returns the identities of the definition and calendar its input was decoded into."""

    @workflow.run
    async def run(self, request: CaseWorkflowInput) -> tuple[int, int]:
        return id(request.definition), id(request.calendar)


@pytest.mark.temporal
@pytest.mark.parametrize("local_env", [pydantic_data_converter], indirect=True)
async def test_sandboxed_workflow_runs_share_one_definition_and_calendar(
    local_env: WorkflowEnvironment,
) -> None:
    client = local_env.client
    task_queue = f"intern-{uuid.uuid4()}"
    value = CaseWorkflowInput(
        case_ref="LA-0000",
        allocation=Allocation(team="TM-AE"),
        definition=the_definition(),
        calendar=the_calendar(),
    )
    ids: list[tuple[int, int]] = []

    async with Worker(client, task_queue=task_queue, workflows=[DefinitionIdentityWorkflow]):
        for number in range(3):
            ids.append(
                await client.execute_workflow(
                    DefinitionIdentityWorkflow.run,
                    value.model_copy(update={"case_ref": f"LA-{number}"}),
                    id=f"intern-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
            )

    assert len(set(ids)) == 1
    assert DEFINITIONS.misses == CALENDARS.misses == 1
