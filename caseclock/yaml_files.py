"""One strict way to read YAML files written by people: definitions and scenarios.

PyYAML reads YAML 1.1, where ``on``, ``no`` and ``yes`` are booleans and an unquoted
``2025-02-30`` raises a bare ValueError. Our files want YAML 1.2 booleans (an outcome called
``no`` stays a string), dates left as text for pydantic to check and name the field of,
and duplicate keys refused rather than silently overwritten.
"""

import re
from pathlib import Path
from typing import Any

import yaml


class YamlFileError(ValueError):
    """A file is not valid YAML; the message says where."""


class _StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans, no implicit dates, no duplicate keys."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _unique_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", mark)
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: Path) -> Any:
    """Parse a file, or raise YamlFileError with the line and column of the problem."""
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise YamlFileError(f"not valid YAML: {error.problem}{where}") from error
    except yaml.YAMLError as error:
        raise YamlFileError(f"not valid YAML: {error}") from error
