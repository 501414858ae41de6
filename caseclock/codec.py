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

Payloads above a few hundred bytes are compressed with zlib before they are encrypted
(ciphertext does not compress): a case's input, with its definition and calendar, goes from
about 34 KB to about 6 KB. A compressed payload says so in its metadata
(``compression: zlib``) and that flag is bound to the ciphertext too, so adding or removing
it fails authentication rather than inflating garbage. Payloads written before compression
(no flag, the key id alone as associated data) still decrypt, and so do unencrypted ones.

Compressing before encrypting lets a payload's stored size depend on how repetitive its
content is. Someone who could both put chosen text into a case's payload and read the size
of what Temporal stores could in principle learn something about the rest of that payload
(the CRIME attack on TLS); reading Temporal's storage is already privileged, and a case's
payloads hold codes rather than names, so the storage saving is judged worth it. Pass
``compress_above=None`` to turn compression off.
"""

import base64
import binascii
import dataclasses
import os
import re
import zlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from caseclock.settings import EncryptionSettings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
COMPRESSION_METADATA = "compression"
ZLIB = b"zlib"
# Serialised payloads at least this long are compressed (when that makes them smaller);
# below it zlib's header and the work rarely pay.
COMPRESS_ABOVE_BYTES = 512
# zlib's default level: 34 KB of case input in under a millisecond, within 1% of level 9.
ZLIB_LEVEL = 6
# A compressed payload may not inflate past this (Temporal itself refuses payloads over
# 2 MB), so a crafted one cannot exhaust a worker's memory. Larger payloads are stored
# uncompressed, so everything this codec compresses it can also decompress.
MAX_DECOMPRESSED_BYTES = 8 * 1024 * 1024
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_LENGTHS = (16, 24, 32)
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_SETTING = "CASECLOCK_ENCRYPTION__KEYS"


class EncryptionKeyError(ValueError):
    """The configured keys are unusable; the message names the entry, never the key."""


class PayloadDecryptionError(ValueError):
    """A payload cannot be decrypted: unknown key id, or altered or truncated ciphertext."""


class PayloadDecompressionError(PayloadDecryptionError):
    """A decrypted payload cannot be decompressed: too large once inflated, or not zlib."""


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
    """AES-GCM payload codec, compressing first: the first key encrypts, any key decrypts.

    An encrypted payload has metadata ``encoding: binary/encrypted`` and
    ``encryption-key-id: <id>``; its data is a 12-byte random nonce followed by the
    AES-GCM ciphertext and tag of the original payload, serialised. When the serialised
    payload is at least ``compress_above`` bytes and zlib makes it smaller, it is
    compressed before encryption and the metadata also holds ``compression: zlib``; the
    associated data is then ``<key id>;compression=zlib`` instead of ``<key id>`` (a key id
    cannot contain ``;``), so the flag cannot be added, removed or changed without failing
    authentication. Payloads without the flag are exactly those written before compression.

    Payloads without ``binary/encrypted`` pass through decoding unchanged, so history
    written before encryption was switched on stays readable.

    Args:
        settings: The keys, as ``key_id:base64key`` entries.
        compress_above: Compress serialised payloads of at least this many bytes; ``None``
            never compresses (decoding still reads compressed payloads).
        max_decompressed_bytes: Refuse a compressed payload that inflates past this.

    Raises:
        EncryptionKeyError: The keys are unusable.

    """

    def __init__(
        self,
        settings: EncryptionSettings,
        *,
        compress_above: int | None = COMPRESS_ABOVE_BYTES,
        max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    ) -> None:
        super().__init__()
        keys = parse_keys([entry.get_secret_value() for entry in settings.keys])
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._encrypting_key_id = next(iter(keys))
        self._compress_above = compress_above
        self._max_decompressed = max_decompressed_bytes

    @property
    def encrypting_key_id(self) -> str:
        """The id of the key that encrypts new payloads."""
        return self._encrypting_key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Compress (when worth it) and encrypt each payload with the first configured key.

        Args:
            payloads: Payloads from the payload converter.

        Returns:
            One encrypted payload for each payload given.

        """
        key_id = self._encrypting_key_id
        cipher = self._ciphers[key_id]
        encoded: list[Payload] = []
        for payload in payloads:
            plain = payload.SerializeToString()
            metadata = {"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}
            compressed = self._compress(plain)
            if compressed is not None:
                plain = compressed
                metadata[COMPRESSION_METADATA] = ZLIB
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, plain, _associated_data(key_id, compressed is not None))
            encoded.append(Payload(metadata=metadata, data=nonce + sealed))
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload with the key its metadata names, then inflate it.

        Args:
            payloads: Payloads as stored in Temporal.

        Returns:
            The original payloads.

        Raises:
            PayloadDecryptionError: A key id that is not configured, an unknown compression,
                or a payload that was altered, truncated or relabelled.
            PayloadDecompressionError: A compressed payload that inflates past the limit or
                is not valid zlib data.

        """
        return [self._decrypt(payload) for payload in payloads]

    def _compress(self, plain: bytes) -> bytes | None:
        """The zlib form of a serialised payload, or None to store it as it is."""
        if self._compress_above is None or not (
            self._compress_above <= len(plain) <= self._max_decompressed
        ):
            return None
        compressed = zlib.compress(plain, ZLIB_LEVEL)
        return compressed if len(compressed) < len(plain) else None

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
        compression = payload.metadata.get(COMPRESSION_METADATA)
        if compression not in {None, ZLIB}:
            msg = (
                f"encrypted payload (key id {key_id!r}) names compression "
                f"{compression!r}; only zlib is known"
            )
            raise PayloadDecryptionError(msg)
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            msg = f"encrypted payload (key id {key_id!r}) is too short to be AES-GCM output"
            raise PayloadDecryptionError(msg)
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        compressed = compression == ZLIB
        try:
            plain = cipher.decrypt(nonce, sealed, _associated_data(key_id, compressed))
        except InvalidTag:
            msg = (
                f"encrypted payload (key id {key_id!r}) failed authentication: it was altered, "
                f"or the key configured under that id is not the one that encrypted it"
            )
            raise PayloadDecryptionError(msg) from None
        if compressed:
            plain = self._decompress(plain, key_id)
        return Payload.FromString(plain)

    def _decompress(self, data: bytes, key_id: str) -> bytes:
        """Inflate zlib data, refusing more than the limit without inflating it all."""
        inflater = zlib.decompressobj()
        try:
            plain = inflater.decompress(data, self._max_decompressed + 1)
        except zlib.error as error:
            msg = f"compressed payload (key id {key_id!r}) is not valid zlib data: {error}"
            raise PayloadDecompressionError(msg) from None
        if len(plain) > self._max_decompressed:
            msg = (
                f"compressed payload (key id {key_id!r}) inflates to more than "
                f"{self._max_decompressed:,} bytes, the limit; refused as a possible "
                f"decompression bomb"
            )
            raise PayloadDecompressionError(msg)
        if not inflater.eof or inflater.unused_data:
            msg = f"compressed payload (key id {key_id!r}) is not one complete zlib stream"
            raise PayloadDecompressionError(msg)
        return plain


def _associated_data(key_id: str, compressed: bool) -> bytes:
    """What AES-GCM authenticates besides the ciphertext: the key id and compression flag.

    Uncompressed payloads bind the key id alone, exactly as before compression existed.
    """
    return f"{key_id};compression=zlib".encode() if compressed else key_id.encode()


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
