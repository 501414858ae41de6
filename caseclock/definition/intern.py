"""One parsed Definition per distinct definition content, shared by every case that carries it.

Every case's workflow input carries its whole definition (about 29 KB of JSON), and each
cached workflow in a worker held its own parsed copy: about 205 KiB, the same for every case
of a version. ``intern_definition``, used as a pydantic wrap validator on a ``Definition``
field, parses a given definition content once and hands every later input with the same
content the instance already parsed::

    definition: Annotated[Definition, WrapValidator(intern_definition)]

Sharing is safe because a ``Definition`` is immutable: every model of the schema is frozen
(``StrictModel``), sequences are tuples, and no code changes its dicts in place (they are
plain dicts, so that stays a rule of the code base, not something Python enforces). The
value a case sees is the one it would have parsed itself, so histories and replays do not
change.

The key is the SHA-256 of ``repr`` of the raw value, not of a canonical (sorted) JSON form:

- order is kept. The core iterates a definition's dicts in order (its clocks, say), so two
  inputs listing the same keys in another order must not share one instance;
- types are kept. For the plain data a JSON document parses into (dicts with string keys,
  lists, strings, ints, floats, booleans, None) ``repr`` is exact: two values have the same
  ``repr`` only if they are equal, with the same types and the same order. JSON text would
  have folded ``True`` and ``"true"`` used as keys, or a tuple and a list, together.

Input from JSON (how Temporal's pydantic converter decodes payloads) is always such plain
data. Python input is first checked to be plain data; anything else (a dict
holding model instances or enum members, say) is parsed as usual and not shared.

Parsing JSON input costs time even on a hit: pydantic-core must first turn the definition
into Python objects to hand it to the validator, and ``repr`` and hashing them come on top
(about 0.4 ms and 0.35 ms of the worker's 11 ms per case started). So a case input writes
its definition as JSON *text* (``definition_as_text``, a serializer for JSON output), and the
validator, given a string, looks it up by a digest of that text: a hit never parses it. A
string is parsed (as JSON, then as above) only the first time. Inputs written before that
carry the definition as an object, and still decode as described above.
"""

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler

from caseclock.definition.schema import Definition

# Distinct definition contents kept: a worker runs a few definitions and a few versions of
# each; 32 parsed definitions are about 6.5 MiB.
CACHE_SIZE = 32

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})


class DefinitionCache:
    """A bounded, thread-safe LRU of parsed definitions keyed by a digest of their content.

    Args:
        maxsize: How many distinct definitions to keep; the least recently used goes first.

    """

    def __init__(self, maxsize: int = CACHE_SIZE) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._maxsize = maxsize
        self._entries: OrderedDict[bytes, Definition] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_parse(self, key: bytes, parse: Callable[[], Definition]) -> Definition:
        """The definition kept under ``key``, or ``parse()``'s, kept for next time.

        Parsing happens outside the lock, so one slow parse does not hold up other threads;
        if two threads parse the same content at once, both get the first one kept.

        Args:
            key: A digest of the definition's content.
            parse: Parses the definition; its errors propagate and nothing is kept.

        Returns:
            The one instance shared by every caller with this key.

        """
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found
            self.misses += 1
        parsed = parse()
        with self._lock:
            kept = self._entries.setdefault(key, parsed)
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)
            return kept

    def clear(self) -> None:
        """Forget every definition and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


DEFINITIONS = DefinitionCache()
"""The process-wide cache ``intern_definition`` uses."""


def content_key(value: Any) -> bytes:
    """A digest of plain data that differs whenever the data, its types or its order differ.

    Args:
        value: Plain data (see ``is_plain_data``); for anything else the key is not exact.

    Returns:
        The SHA-256 digest of ``repr(value)``.

    """
    return hashlib.sha256(repr(value).encode("utf-8", "surrogatepass")).digest()


def is_plain_data(value: Any) -> bool:
    """Whether a value is made only of what JSON parses into, with string keys.

    Exact types are required (no subclasses), so ``repr`` is faithful to the content.
    Nesting too deep to walk counts as not plain (pydantic would refuse it anyway).
    """
    try:
        return _plain(value)
    except RecursionError:
        return False


def _plain(value: Any) -> bool:
    # Recursive rather than with an explicit stack: twice as fast on a definition.
    kind = type(value)
    if kind is dict:
        return all(type(key) is str and _plain(item) for key, item in value.items())
    if kind is list:
        return all(map(_plain, value))
    return kind in _PLAIN_SCALARS


def definition_as_text(definition: Definition) -> str:
    """Pydantic serializer for JSON output: the definition as JSON text (see the module)."""
    return definition.model_dump_json(by_alias=True)


def intern_definition(
    value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
) -> Definition:
    """Pydantic wrap validator: the shared parsed instance for this definition content.

    A ``Definition`` given as it is is returned as it is. Its JSON text is looked up by a
    digest of the text. A mapping of a definition (from JSON, or plain data from Python) is
    looked up by content. Either is parsed by ``handler`` only the first time; anything
    else is left to ``handler`` (and its errors).

    Args:
        value: The raw field value.
        handler: Pydantic's validation of the field.
        info: Pydantic's validation info: JSON input needs no plain-data check.

    Returns:
        The parsed definition, shared with every other input of the same content.

    """
    if isinstance(value, Definition):
        return value
    if type(value) is str:
        key = b"text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
        return DEFINITIONS.get_or_parse(key, lambda: _parse_text(value, handler))
    if type(value) is not dict or (info.mode != "json" and not is_plain_data(value)):
        return _parse(value, handler)
    return DEFINITIONS.get_or_parse(content_key(value), lambda: _parse(value, handler))


def _parse_text(text: str, handler: ValidatorFunctionWrapHandler) -> Definition:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the definition is not valid JSON text: {error}") from error
    if type(data) is not dict:
        raise ValueError("the definition's JSON text is not an object")
    return _parse(data, handler)


def _parse(value: Any, handler: ValidatorFunctionWrapHandler) -> Definition:
    parsed = handler(value)
    if not isinstance(parsed, Definition):  # the wrapped field's own type guarantees it
        raise TypeError(f"expected a Definition from validation, got {type(parsed).__name__}")
    return parsed
