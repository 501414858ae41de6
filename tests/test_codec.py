"""Payload encryption: round trip, rotation, tampering, key configuration, real server."""

import base64
import os
import shutil
import sys
import uuid
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The workflow sandbox re-imports this module; cryptography's native bindings cannot be
# imported twice, so these come from outside the sandbox, as workflow modules do.
with workflow.unsafe.imports_passed_through():
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from pydantic import BaseModel, SecretStr

    from caseclock.calendar_source import build_england_and_wales_calendar
    from caseclock.codec import (
        COMPRESSION_METADATA,
        ENCODING,
        KEY_ID_METADATA,
        MAX_DECOMPRESSED_BYTES,
        EncryptionCodec,
        EncryptionKeyError,
        PayloadDecompressionError,
        PayloadDecryptionError,
        data_converter,
        parse_keys,
    )
    from caseclock.definition.loader import load_definition
    from caseclock.settings import EncryptionSettings
    from workflows.case_types import Allocation, CaseWorkflowInput


def key_entry(key_id: str, length: int = 32) -> str:
    return f"{key_id}:{base64.b64encode(os.urandom(length)).decode()}"


def settings(*entries: str) -> EncryptionSettings:
    return EncryptionSettings(keys=[SecretStr(entry) for entry in entries])


def json_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_round_trip() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    original = json_payload("CASE-0001 marker")

    (encrypted,) = await codec.encode([original])
    (decrypted,) = await codec.decode([encrypted])

    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID_METADATA] == b"k1"
    assert b"CASE-0001" not in encrypted.data
    assert decrypted == original


@pytest.mark.parametrize("length", [16, 24, 32])
async def test_every_aes_key_length_works(length: int) -> None:
    codec = EncryptionCodec(settings(key_entry("k", length)))
    original = json_payload("x")

    assert await codec.decode(await codec.encode([original])) == [original]


async def test_each_encryption_uses_a_fresh_nonce() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    original = json_payload("same")

    first, second = await codec.encode([original, original])

    assert first.data[:12] != second.data[:12]
    assert first.data != second.data


async def test_the_development_key_in_settings_works() -> None:
    codec = EncryptionCodec(EncryptionSettings())

    assert codec.encrypting_key_id == "dev"
    assert await codec.decode(await codec.encode([json_payload("x")])) == [json_payload("x")]


async def test_unencrypted_payloads_pass_through_decoding() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    plain = json_payload("written before encryption was switched on")

    assert await codec.decode([plain]) == [plain]


async def test_rotation_old_payloads_decode_after_a_new_key_is_put_first() -> None:
    old, new = key_entry("2025-01"), key_entry("2026-01")
    original = json_payload("CASE-0001")
    (from_old_key,) = await EncryptionCodec(settings(old)).encode([original])

    rotated = EncryptionCodec(settings(new, old))
    (from_new_key,) = await rotated.encode([original])

    assert rotated.encrypting_key_id == "2026-01"
    assert from_new_key.metadata[KEY_ID_METADATA] == b"2026-01"
    assert await rotated.decode([from_old_key, from_new_key]) == [original, original]


async def test_a_retired_key_id_is_a_clear_error() -> None:
    old, new = key_entry("2025-01"), key_entry("2026-01")
    (from_old_key,) = await EncryptionCodec(settings(old)).encode([json_payload("x")])

    with pytest.raises(PayloadDecryptionError, match=r"key id '2025-01', which is not configured"):
        await EncryptionCodec(settings(new)).decode([from_old_key])


async def test_tampered_ciphertext_is_rejected() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    (encrypted,) = await codec.encode([json_payload("CASE-0001")])
    flipped = bytearray(encrypted.data)
    flipped[20] ^= 0x01
    tampered = Payload(metadata=dict(encrypted.metadata), data=bytes(flipped))

    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([tampered])


async def test_relabelled_key_id_is_rejected() -> None:
    # Both keys are configured: the key id is bound to the ciphertext, so swapping the
    # label must not make the payload decrypt (or fail obscurely) under the other key.
    first, second = key_entry("a"), key_entry("b")
    codec = EncryptionCodec(settings(first, second))
    (encrypted,) = await codec.encode([json_payload("x")])
    relabelled = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: b"b"}, data=encrypted.data
    )

    with pytest.raises(PayloadDecryptionError, match=r"key id 'b'.*failed authentication"):
        await codec.decode([relabelled])


async def test_truncated_ciphertext_is_rejected() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    (encrypted,) = await codec.encode([json_payload("x")])
    truncated = Payload(metadata=dict(encrypted.metadata), data=encrypted.data[:20])

    with pytest.raises(PayloadDecryptionError, match="too short"):
        await codec.decode([truncated])


# Compression: zlib before encryption, flagged in the metadata and bound to the ciphertext.


def fixed_key(key_id: str) -> tuple[str, bytes]:
    key = os.urandom(32)
    return f"{key_id}:{base64.b64encode(key).decode()}", key


def large_payload(size: int = 20_000) -> Payload:
    # Repetitive, like a definition: compresses well.
    text = ("CASE-0001 strategy discussion within 3 working days; " * (size // 50))[:size]
    return json_payload(text)


def seal(key: bytes, plain: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plain, associated_data)


def open_sealed(key: bytes, data: bytes, associated_data: bytes) -> bytes:
    return AESGCM(key).decrypt(data[:12], data[12:], associated_data)


async def test_large_payloads_are_compressed_then_encrypted() -> None:
    entry, key = fixed_key("k1")
    codec = EncryptionCodec(settings(entry))
    original = large_payload()

    (encrypted,) = await codec.encode([original])

    assert encrypted.metadata[COMPRESSION_METADATA] == b"zlib"
    assert len(encrypted.data) < len(original.SerializeToString()) // 10
    inner = open_sealed(key, encrypted.data, b"k1;compression=zlib")
    assert Payload.FromString(zlib.decompress(inner)) == original
    assert await codec.decode([encrypted]) == [original]


async def test_small_payloads_are_left_uncompressed_in_the_old_format() -> None:
    entry, key = fixed_key("k1")
    codec = EncryptionCodec(settings(entry))
    original = json_payload("CASE-0001 " * 40)  # about 400 bytes: below the threshold

    (encrypted,) = await codec.encode([original])

    assert COMPRESSION_METADATA not in encrypted.metadata
    # Exactly what the codec wrote before compression: the key id alone is bound.
    assert Payload.FromString(open_sealed(key, encrypted.data, b"k1")) == original
    assert await codec.decode([encrypted]) == [original]


async def test_payloads_zlib_cannot_shrink_are_left_uncompressed() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    original = Payload(metadata={"encoding": b"binary/plain"}, data=os.urandom(4_000))

    (encrypted,) = await codec.encode([original])

    assert COMPRESSION_METADATA not in encrypted.metadata
    assert await codec.decode([encrypted]) == [original]


async def test_compression_can_be_turned_off() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")), compress_above=None)
    original = large_payload()

    (encrypted,) = await codec.encode([original])

    assert COMPRESSION_METADATA not in encrypted.metadata
    assert await codec.decode([encrypted]) == [original]


async def test_payloads_over_the_inflate_limit_are_stored_uncompressed() -> None:
    # Whatever the codec compresses it must be able to decompress again.
    codec = EncryptionCodec(settings(key_entry("k1")), max_decompressed_bytes=5_000)
    original = large_payload(20_000)

    (encrypted,) = await codec.encode([original])

    assert COMPRESSION_METADATA not in encrypted.metadata
    assert await codec.decode([encrypted]) == [original]


async def test_large_payloads_written_before_compression_still_decode() -> None:
    # The format before compression: a large payload encrypted whole, key id bound, no flag.
    entry, key = fixed_key("k1")
    original = large_payload()
    old = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"},
        data=seal(key, original.SerializeToString(), b"k1"),
    )

    assert await EncryptionCodec(settings(entry)).decode([old]) == [original]


async def test_removing_the_compression_flag_fails_authentication() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    (encrypted,) = await codec.encode([large_payload()])
    stripped = Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1"}, data=encrypted.data)

    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([stripped])


async def test_adding_the_compression_flag_fails_authentication() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    (encrypted,) = await codec.encode([json_payload("x")])
    flagged = Payload(
        metadata={**encrypted.metadata, COMPRESSION_METADATA: b"zlib"}, data=encrypted.data
    )

    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([flagged])


async def test_an_unknown_compression_is_a_clear_error() -> None:
    codec = EncryptionCodec(settings(key_entry("k1")))
    (encrypted,) = await codec.encode([large_payload()])
    relabelled = Payload(
        metadata={**encrypted.metadata, COMPRESSION_METADATA: b"zstd"}, data=encrypted.data
    )

    with pytest.raises(PayloadDecryptionError, match=r"compression b'zstd'; only zlib"):
        await codec.decode([relabelled])


async def test_a_decompression_bomb_is_refused() -> None:
    # Authentic (made with the key), but 9 MiB once inflated: refused without inflating it.
    entry, key = fixed_key("k1")
    bomb = zlib.compress(bytes(MAX_DECOMPRESSED_BYTES + 1024 * 1024), 9)
    assert len(bomb) < 20_000
    crafted = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1", COMPRESSION_METADATA: b"zlib"},
        data=seal(key, bomb, b"k1;compression=zlib"),
    )

    with pytest.raises(PayloadDecompressionError, match=r"more than 8,388,608 bytes"):
        await EncryptionCodec(settings(entry)).decode([crafted])


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        (b"not zlib at all", "not valid zlib data"),
        (zlib.compress(b"x" * 1000)[:-6], "not one complete zlib stream"),
        (zlib.compress(b"x" * 1000) + b"trailing", "not one complete zlib stream"),
    ],
    ids=["garbage", "truncated", "trailing"],
)
async def test_bad_zlib_inside_an_authentic_payload_is_a_clear_error(
    inner: bytes, message: str
) -> None:
    entry, key = fixed_key("k1")
    crafted = Payload(
        metadata={"encoding": ENCODING, KEY_ID_METADATA: b"k1", COMPRESSION_METADATA: b"zlib"},
        data=seal(key, inner, b"k1;compression=zlib"),
    )

    with pytest.raises(PayloadDecompressionError, match=message):
        await EncryptionCodec(settings(entry)).decode([crafted])


async def test_rotation_reads_compressed_payloads_of_the_old_key() -> None:
    old, new = key_entry("2025-01"), key_entry("2026-01")
    original = large_payload()
    (from_old_key,) = await EncryptionCodec(settings(old)).encode([original])

    assert await EncryptionCodec(settings(new, old)).decode([from_old_key]) == [original]


def real_case_input() -> CaseWorkflowInput:
    # A real case input: the child protection definition and the calendar a case opened
    # in 2026 carries (the year before to 8 years ahead, as caseclock.cases.calendar_for).
    root = Path(__file__).resolve().parent.parent
    return CaseWorkflowInput(
        case_ref="LA-000123",
        allocation=Allocation(team="TM-AE", worker="SW-0042"),
        definition=load_definition(root / "definitions" / "child-protection.yaml"),
        calendar=build_england_and_wales_calendar(2025, 2034),
    )


async def test_a_case_input_shrinks_from_about_34_kb_to_about_6_kb() -> None:
    value = real_case_input()
    keys = settings(key_entry("k1"))
    (before,) = await EncryptionCodec(keys, compress_above=None).encode(
        pydantic_data_converter.payload_converter.to_payloads([value])
    )
    converter = data_converter(keys)

    (after,) = await converter.encode([value])

    before_bytes, after_bytes = len(before.SerializeToString()), len(after.SerializeToString())
    print(
        f"CaseWorkflowInput payload: {before_bytes:,} bytes encrypted, {after_bytes:,} compressed"
    )
    assert after.metadata[COMPRESSION_METADATA] == b"zlib"
    assert before_bytes > 30_000
    assert after_bytes < 8_000
    assert await converter.decode([after], [CaseWorkflowInput]) == [value]


SHORT_KEY = base64.b64encode(b"twenty-bytes-of-key!").decode()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "no encryption keys configured"),
        (["just-a-key"], r"entry 1 is not key_id:base64key"),
        ([":" + base64.b64encode(bytes(32)).decode()], r"entry 1 is not key_id:base64key"),
        (["has space:" + base64.b64encode(bytes(32)).decode()], r"entry 1 is not key_id"),
        (["k1:not base64!"], r"entry 1 \(key id 'k1'\): the key is not valid base64"),
        ([f"k1:{SHORT_KEY}"], r"entry 1 \(key id 'k1'\): .*16, 24 or 32 bytes .*not 20"),
        ([key_entry("k1"), key_entry("k1")], r"entry 2: key id 'k1' is listed twice"),
    ],
)
def test_bad_key_configuration_is_refused(entries: list[str], message: str) -> None:
    with pytest.raises(EncryptionKeyError, match=message) as info:
        EncryptionCodec(settings(*entries))

    assert SHORT_KEY not in str(info.value)


def test_parse_keys_keeps_the_order_given() -> None:
    keys = parse_keys([key_entry("new", 16), key_entry("old", 32)])

    assert list(keys) == ["new", "old"]
    assert [len(key) for key in keys.values()] == [16, 32]


class MarkerInput(BaseModel):
    marker: str


class MarkerResult(BaseModel):
    echo: str


async def test_data_converter_encrypts_pydantic_models() -> None:
    converter = data_converter(settings(key_entry("k1")))
    value = MarkerInput(marker="CASE-0001-marker")

    (payload,) = await converter.encode([value])

    assert payload.metadata["encoding"] == ENCODING
    assert b"CASE-0001-marker" not in payload.SerializeToString()
    assert await converter.decode([payload], [MarkerInput]) == [value]


# End to end against a real Temporal dev server.


@workflow.defn
class EchoMarkerWorkflow:
    """Returns its input's marker, so it crosses history as input and as result."""

    @workflow.run
    async def run(self, request: MarkerInput) -> MarkerResult:
        return MarkerResult(echo=request.marker)


def temporal_cli() -> str:
    return shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")


@pytest.fixture(scope="module")
async def encrypted_env() -> AsyncIterator[WorkflowEnvironment]:
    converter = data_converter(settings(key_entry("e2e")))
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(), data_converter=converter
    ) as env:
        yield env


@pytest.mark.temporal
async def test_history_holds_only_ciphertext(encrypted_env: WorkflowEnvironment) -> None:
    marker = f"MARKER-{uuid.uuid4()}"
    workflow_id = f"codec-e2e-{uuid.uuid4()}"
    task_queue = f"codec-e2e-{uuid.uuid4()}"
    client = encrypted_env.client

    async with Worker(client, task_queue=task_queue, workflows=[EchoMarkerWorkflow]):
        result = await client.execute_workflow(
            EchoMarkerWorkflow.run,
            MarkerInput(marker=marker),
            id=workflow_id,
            task_queue=task_queue,
        )

    assert result == MarkerResult(echo=marker)
    read_back = await client.get_workflow_handle(workflow_id, result_type=MarkerResult).result()
    assert read_back == MarkerResult(echo=marker)

    # A client without the codec sees the history as the server stores it.
    plain = Client(client.service_client, namespace=client.namespace)
    history = await plain.get_workflow_handle(workflow_id).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    completed = history.events[-1].workflow_execution_completed_event_attributes
    assert [p.metadata["encoding"] for p in started.input.payloads] == [ENCODING]
    assert [p.metadata["encoding"] for p in completed.result.payloads] == [ENCODING]
    for event in history.events:
        assert marker.encode() not in event.SerializeToString()
    # Control: unencrypted, the marker would be visible in exactly these bytes.
    (unencrypted,) = await pydantic_data_converter.encode([MarkerInput(marker=marker)])
    assert marker.encode() in unencrypted.SerializeToString()
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await plain.get_workflow_handle(workflow_id, result_type=MarkerResult).result()
