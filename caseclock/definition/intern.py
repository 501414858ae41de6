"""One parsed Definition per distinct definition content, shared by every case that carries it.

Every case's workflow input carries its whole definition (about 29 KB of JSON), and each
cached workflow in a worker held its own parsed copy: about 205 KiB, the same for every case
of a version. ``intern_definition``, used as a pydantic wrap validator on a ``Definition``
field, parses a given definition content once and hands every later input with the same
content the instance already parsed (``caseclock.interning`` says how, and why that is
safe)::

    definition: Annotated[Definition, WrapValidator(intern_definition)]

Sharing is safe because a ``Definition`` is immutable: every model of the schema is frozen
(``StrictModel``), sequences are tuples, and no code changes its dicts in place (they are
plain dicts, so that stays a rule of the code base, not something Python enforces).

Parsing JSON input costs time even on a hit: pydantic-core must first turn the definition
into Python objects to hand it to the validator, and ``repr`` and hashing them come on top
(about 0.4 ms and 0.35 ms of the worker's 11 ms per case started). So a case input writes
its definition as JSON *text* (``definition_as_text``, a serializer for JSON output), and the
validator, given a string, looks it up by a digest of that text: a hit never parses it. A
string is parsed (as JSON, then as a mapping) only the first time. Inputs written before
that carry the definition as an object, and still decode through the mapping path.
"""

import hashlib
import json
from typing import Any

from pydantic import ValidationInfo, ValidatorFunctionWrapHandler

from caseclock.definition.schema import Definition
from caseclock.interning import ContentCache, parse_as, shared_by_content

# Distinct definition contents kept: a worker runs a few definitions and a few versions of
# each; 32 parsed definitions are about 6.5 MiB.
CACHE_SIZE = 32

DEFINITIONS: ContentCache[Definition] = ContentCache(CACHE_SIZE)
"""The process-wide cache ``intern_definition`` uses."""

_shared_mapping = shared_by_content(Definition, DEFINITIONS)


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
    if type(value) is str:
        key = b"text:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()
        return DEFINITIONS.get_or_parse(key, lambda: _parse_text(value, handler))
    return _shared_mapping(value, handler, info)


def _parse_text(text: str, handler: ValidatorFunctionWrapHandler) -> Definition:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the definition is not valid JSON text: {error}") from error
    if type(data) is not dict:
        raise ValueError("the definition's JSON text is not an object")
    return parse_as(Definition, data, handler)
