"""Encrypt every Temporal payload with AES-GCM, with key ids so keys can be rotated.

Workflow inputs, results, activity arguments and update payloads pass through Temporal's
history. This codec encrypts each one before it leaves the process, so the Temporal
server, its database and its backups only ever hold ciphertext.

Keys come from ``EncryptionSettings.keys`` as ``key_id:base64key`` entries. The first key
encrypts; every listed key decrypts. To rotate, put a new key first and keep the old one
listed until no open case's history still needs it.

Follows ``encryption/`` in temporalio/samples-python, with two changes: several keys
(rotation), and the key id bound to the ciphertext as associated data, so that relabelling
a payload with another key id fails authentication instead of decrypting under the
wrong key.
"""

import base64
import binascii
import dataclasses
import os
import re
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from caseclock.settings import EncryptionSettings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_LENGTHS = (16, 24, 32)
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SETTING = "CASECLOCK_ENCRYPTION__KEYS"


class EncryptionKeyError(ValueError):
    """The configured keys are unusable; the message names the entry, never the key."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted: unknown key id, or altered or truncated ciphertext."""


def parse_keys(entries: Sequence[str]) -> dict[str, bytes]:
    """Parse ``key_id:base64key`` entries into keys by id, in the order given.

    Args:
        entries: The raw entries; the first one is the encrypting key.

    Returns:
        Keys by key id; the first item is the encrypting key.

    Raises:
        EncryptionKeyError: No entries, a malformed entry, a duplicate id, bad base64, or a
            key that is not 16, 24 or 32 bytes long.

    """
    if not entries:
        msg = f"no encryption keys configured; set {_SETTING} to key_id:base64key entries"
        raise EncryptionKeyError(msg)
    keys: dict[str, bytes] = {}
    for number, entry in enumerate(entries, start=1):
        key_id, separator, encoded = entry.strip().partition(":")
        where = f"{_SETTING} entry {number}"
        if not separator or not _KEY_ID.fullmatch(key_id):
            msg = (
                f"{where} is not key_id:base64key (key_id: 1 to 64 letters, digits, '.', '_' "
                f"or '-')"
            )
            raise EncryptionKeyError(msg)
        if key_id in keys:
            msg = f"{where}: key id {key_id!r} is listed twice"
            raise EncryptionKeyError(msg)
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            msg = f"{where} (key id {key_id!r}): the key is not valid base64"
            raise EncryptionKeyError(msg) from None
        if len(key) not in KEY_LENGTHS:
            msg = (
                f"{where} (key id {key_id!r}): the key must decode to 16, 24 or 32 bytes "
                f"for AES-GCM, not {len(key)}"
            )
            raise EncryptionKeyError(msg)
        keys[key_id] = key
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM payload codec: the first key encrypts, any configured key decrypts.

    An encrypted payload has metadata ``encoding: binary/encrypted`` and
    ``encryption-key-id: <id>``; its data is a 12-byte random nonce followed by the
    AES-GCM ciphertext and tag of the original payload, serialised.

    Payloads without ``binary/encrypted`` pass through decoding unchanged, so history
    written before encryption was switched on stays readable.

    Args:
        settings: The keys, as ``key_id:base64key`` entries.

    Raises:
        EncryptionKeyError: The keys are unusable.

    """

    def __init__(self, settings: EncryptionSettings) -> None:
        super().__init__()
        keys = parse_keys([entry.get_secret_value() for entry in settings.keys])
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._encrypting_key_id = next(iter(keys))

    @property
    def encrypting_key_id(self) -> str:
        """The id of the key that encrypts new payloads."""
        return self._encrypting_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the first configured key.

        Args:
            payloads: Payloads from the payload converter.

        Returns:
            One encrypted payload for each payload given.

        """
        key_id = self._encrypting_key_id
        cipher = self._ciphers[key_id]
        encoded: list[Payload] = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload with the key its metadata names.

        Args:
            payloads: Payloads as stored in Temporal.

        Returns:
            The original payloads.

        Raises:
            PayloadDecryptionError: A key id that is not configured, or a payload that was
                altered, truncated or relabelled.

        """
        return [self._decrypt(payload) for payload in payloads]

    def _decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._ciphers))
            msg = (
                f"payload was encrypted with key id {key_id!r}, which is not configured "
                f"(configured: {known}); add that key to {_SETTING}"
            )
            raise PayloadDecryptionError(msg)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            msg = f"encrypted payload (key id {key_id!r}) is too short to be AES-GCM output"
            raise PayloadDecryptionError(msg)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            msg = (
                f"encrypted payload (key id {key_id!r}) failed authentication: it was altered, "
                f"or the key configured under that id is not the one that encrypted it"
            )
            raise PayloadDecryptionError(msg) from None
        return Payload.FromString(plain)


def data_converter(settings: EncryptionSettings) -> DataConverter:
    """Build the data converter every Temporal client and worker must use.

    Args:
        settings: The encryption keys.

    Returns:
        The pydantic data converter with payloads encrypted by ``EncryptionCodec``.

    Raises:
        EncryptionKeyError: The keys are unusable.

    """
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(settings))
