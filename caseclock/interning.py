"""One parsed instance per distinct content, shared by every workflow input that carries it.

Every case's workflow input carries its whole definition and its working calendar, and each
cached workflow in a worker held its own parsed copy of both, the same for every case of a
version. A wrap validator (``shared_by_content``) on such a field parses a given content
once and hands every later input with the same content the instance already parsed.

Sharing is safe only for immutable models: every model inside must be frozen, sequences
tuples, and no code may change a dict in place. The value a case sees is the one it would
have parsed itself, so histories and replays do not change.

The key is the SHA-256 of ``repr`` of the raw value, not of a canonical (sorted) JSON form:

- order is kept. The core iterates a definition's dicts in order (its clocks, say), so two
  inputs listing the same keys in another order must not share one instance;
- types are kept. For the plain data a JSON document parses into (dicts with string keys,
  lists, strings, ints, floats, booleans, None) ``repr`` is exact: two values have the same
  ``repr`` only if they are equal, with the same types and the same order. JSON text would
  have folded ``True`` and ``"true"`` used as keys, or a tuple and a list, together.

Input from JSON (how Temporal's pydantic converter decodes payloads) is always such plain
data. Python input is first checked to be plain data; anything else (a dict holding model
instances or enum members, say) is parsed as usual and not shared.
"""

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationInfo, ValidatorFunctionWrapHandler

_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class ContentCache(Generic[T]):
    """A bounded, thread-safe LRU of parsed values keyed by a digest of their content.

    Args:
        maxsize: How many distinct contents to keep; the least recently used goes first.

    """

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be at least 1, not {maxsize}")
        self._maxsize = maxsize
        self._entries: OrderedDict[bytes, T] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_parse(self, key: bytes, parse: Callable[[], T]) -> T:
        """The value kept under ``key``, or ``parse()``'s, kept for next time.

        Parsing happens outside the lock, so one slow parse does not hold up other threads;
        if two threads parse the same content at once, both get the first one kept.

        Args:
            key: A digest of the value's content.
            parse: Parses the value; its errors propagate and nothing is kept.

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
        """Forget every value and reset the counters."""
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


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


def shared_by_content(
    model: type[M], cache: ContentCache[M]
) -> Callable[[Any, ValidatorFunctionWrapHandler, ValidationInfo], M]:
    """A pydantic wrap validator that shares one parsed ``model`` per content in ``cache``.

    An instance of ``model`` is returned as it is. A mapping (from JSON, or plain data from
    Python) is looked up by content and parsed by pydantic only the first time; anything
    else is left to pydantic's own validation (and its errors).
    """

    def shared(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> M:
        if isinstance(value, model):
            return value
        if type(value) is not dict or (info.mode != "json" and not is_plain_data(value)):
            return parse_as(model, value, handler)
        return cache.get_or_parse(content_key(value), lambda: parse_as(model, value, handler))

    return shared


def parse_as(model: type[M], value: Any, handler: ValidatorFunctionWrapHandler) -> M:
    """Pydantic's validation of the field, which its own type makes a ``model``."""
    parsed = handler(value)
    if not isinstance(parsed, model):  # the wrapped field's own type guarantees it
        raise TypeError(f"expected a {model.__name__} from validation, got {type(parsed).__name__}")
    return parsed
