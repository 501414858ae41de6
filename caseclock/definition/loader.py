"""Load definition files: YAML in, a validated ``Definition`` out, or every problem at once."""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from caseclock.definition.references import Problem, check_references
from caseclock.definition.schema import SCHEMA_VERSION, Definition
from caseclock.yaml_files import YamlFileError, read_yaml

# Migrations from older schema versions: version N -> function turning an N file into N+1.
# Each migration is a small function whose docstring says what changed. None yet: version 1
# is the first released format.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class DefinitionError(Exception):
    """A definition file is invalid; carries every problem found, each with its field."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}: {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s)\n{lines}")


def parse_definition(raw: Any, source: str = "<definition>") -> Definition:
    """Validate raw data (parsed YAML) into a Definition, or raise DefinitionError."""
    if not isinstance(raw, Mapping):
        raise DefinitionError(source, [Problem("(file)", "must be a mapping of keys to values")])
    data = _migrate(dict(raw), source)
    problems: list[Problem] = []
    definition: Definition | None = None
    try:
        definition = Definition.model_validate(data)
    except ValidationError as error:
        problems += [_problem_from_pydantic(item) for item in error.errors()]
    problems += check_references(data)
    if problems or definition is None:
        raise DefinitionError(source, problems)
    return definition


def load_definition(path: Path) -> Definition:
    """Read and validate one YAML definition file."""
    source = str(path)
    try:
        raw = read_yaml(path)
    except YamlFileError as error:
        raise DefinitionError(source, [Problem("(file)", str(error))]) from error
    return parse_definition(raw, source)


def load_definitions(folder: Path) -> dict[str, Definition]:
    """Every definition in a folder, keyed by ``id@version``; all files' problems at once."""
    definitions: dict[str, Definition] = {}
    errors: list[DefinitionError] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            definition = load_definition(path)
        except DefinitionError as error:
            errors.append(error)
            continue
        key = f"{definition.id}@{definition.version}"
        if key in definitions:
            errors.append(DefinitionError(str(path), [Problem("id", f"{key} is defined twice")]))
        definitions[key] = definition
    if errors:
        problems = [Problem(f"{e.source}: {p.path}", p.message) for e in errors for p in e.problems]
        raise DefinitionError(str(folder), problems)
    return definitions


def _migrate(data: dict[str, Any], source: str) -> dict[str, Any]:
    version = data.get("schema_version")
    if not isinstance(version, int):
        return data  # pydantic reports the missing or malformed schema_version
    if version > SCHEMA_VERSION:
        raise DefinitionError(
            source,
            [
                Problem(
                    "schema_version",
                    f"version {version} is newer than this engine understands "
                    f"({SCHEMA_VERSION}); upgrade Caseclock",
                )
            ],
        )
    while version < SCHEMA_VERSION and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data


def _problem_from_pydantic(error: Mapping[str, Any]) -> Problem:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (misspelt, or not part of schema version 1)"
    return Problem(path or "(file)", message)
