"""Static checks of deploy/: Docker cannot run here, so the files are parsed, not run.

What is checked: the compose services and their order of start-up, health checks, that
every CASECLOCK_ variable names a real settings field, that secrets come only from the env
file, the Dockerfile's hash-checked install and non-root user, and the systemd units (by
``systemd-analyze verify`` where it exists, by parsing everywhere).
"""

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

from caseclock.settings import Environment, Settings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "caseclock.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))

PREFIX = "CASECLOCK_"
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|KEYS|TOKEN", re.IGNORECASE)


def settings_field(variable: str) -> bool:
    """Whether ``CASECLOCK_GROUP__FIELD`` names a field of ``Settings`` (walking groups)."""
    model: type[BaseModel] = Settings
    parts = variable.removeprefix(PREFIX).lower().split("__")
    for position, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        last = position == len(parts) - 1
        if last:
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return False


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "use the mapping form of environment"
    return {str(name): str(value) for name, value in environment.items()}


def test_settings_walker_accepts_fields_and_refuses_others() -> None:
    assert settings_field("CASECLOCK_ENVIRONMENT")
    assert settings_field("CASECLOCK_TEMPORAL__ADDRESS")
    assert settings_field("CASECLOCK_ENCRYPTION__KEYS")
    assert not settings_field("CASECLOCK_TEMPORAL__NO_SUCH_FIELD")
    assert not settings_field("CASECLOCK_NO_SUCH_GROUP__ADDRESS")
    assert not settings_field("CASECLOCK_LOG_LEVEL__DEEPER")


def test_compose_has_the_services_in_dependency_order(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == {
        "postgresql",
        "db-init",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        "caseclock-worker",
        "caseclock-api",
    }

    def waits_for(service: str, dependency: str, condition: str) -> bool:
        depends_on = services[service].get("depends_on", {})
        return bool(depends_on.get(dependency, {}).get("condition") == condition)

    assert waits_for("db-init", "postgresql", "service_healthy")
    assert waits_for("temporal-schema", "db-init", "service_completed_successfully")
    assert waits_for("temporal", "temporal-schema", "service_completed_successfully")
    assert waits_for("temporal-setup", "temporal", "service_healthy")
    assert waits_for("temporal-ui", "temporal", "service_healthy")
    for app in ("caseclock-worker", "caseclock-api"):
        assert waits_for(app, "db-init", "service_completed_successfully")
        assert waits_for(app, "temporal-setup", "service_completed_successfully")


def test_postgres_16_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    postgres = services["postgresql"]
    assert postgres["image"] == "postgres:16"
    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"]
    assert "ports" not in postgres, "the database stays on the compose network"


def test_long_running_services_have_health_checks(services: dict[str, dict[str, Any]]) -> None:
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    for name in ("postgresql", "temporal", "caseclock-api"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert check["retries"] > 0


def test_temporal_uses_postgres_and_registers_the_search_attributes(
    services: dict[str, dict[str, Any]],
) -> None:
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert environment_of(services["temporal"])["DB"] == "postgres12"
    setup = services["temporal-setup"]["command"][0]
    for name, kind in (
        ("CaseclockDefinition", "Keyword"),
        ("CaseclockTeam", "Keyword"),
        ("CaseclockStages", "KeywordList"),
    ):
        assert f"--name {name} --type {kind}" in setup


def test_app_services_run_the_worker_and_the_api(services: dict[str, dict[str, Any]]) -> None:
    assert services["caseclock-worker"]["command"] == ["python", "worker.py"]
    assert services["caseclock-api"]["command"] == ["caseclock", "api"]
    for name in ("caseclock-worker", "caseclock-api"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        environment = environment_of(service)
        assert environment["CASECLOCK_ENVIRONMENT"] == Environment.PRODUCTION.value
        assert environment["CASECLOCK_TEMPORAL__ADDRESS"] == "temporal:7233"
        assert environment["CASECLOCK_DATABASE__URL"].startswith("postgresql+asyncpg://")
    api = environment_of(services["caseclock-api"])
    assert (api["CASECLOCK_API__HOST"], api["CASECLOCK_API__PORT"]) == ("0.0.0.0", "8000")
    assert services["caseclock-api"]["ports"] == ["127.0.0.1:8000:8000"]


def test_every_caseclock_variable_in_compose_is_a_settings_field(
    services: dict[str, dict[str, Any]],
) -> None:
    names = {
        name
        for service in services.values()
        for name in environment_of(service)
        if name.startswith(PREFIX)
    }
    assert names, "compose sets no CASECLOCK_ variable"
    assert [name for name in sorted(names) if not settings_field(name)] == []


def test_compose_takes_secrets_only_from_the_env_file(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        for variable, value in environment_of(service).items():
            if SECRET_NAME.search(variable):
                assert INTERPOLATION.fullmatch(value), f"{name}: {variable} is written inline"
            if "://" in value and "@" in value:
                credentials = value.split("://", 1)[1].split("@", 1)[0]
                password = credentials.partition(":")[2]
                assert INTERPOLATION.fullmatch(password), f"{name}: password inline in {variable}"


def test_every_required_compose_variable_is_in_the_env_example() -> None:
    example = dotenv_values(ENV_EXAMPLE)
    required = {
        match.group(1)
        for match in INTERPOLATION.finditer(COMPOSE.read_text())
        if ":?" in match.group(0)
    }
    assert required
    assert sorted(required - set(example)) == []


def test_env_example_names_real_settings_and_is_refused_until_filled_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = {name: value or "" for name, value in dotenv_values(ENV_EXAMPLE).items()}
    caseclock = {name: value for name, value in example.items() if name.startswith(PREFIX)}
    assert [name for name in sorted(caseclock) if not settings_field(name)] == []

    for name in list(caseclock):
        monkeypatch.delenv(name, raising=False)
    for name, value in caseclock.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()

    real_key = "primary:" + "A" * 43 + "="
    monkeypatch.setenv("CASECLOCK_ENCRYPTION__KEYS", f'["{real_key}"]')
    # Still refused: the session secret is a placeholder too.
    with pytest.raises(ValidationError, match="SESSION_SECRET is a placeholder"):
        Settings()
    monkeypatch.setenv("CASECLOCK_AUTH__SESSION_SECRET", "s" * 64)
    settings = Settings()
    assert settings.environment is Environment.PRODUCTION
    assert [key.get_secret_value() for key in settings.encryption.keys] == [real_key]
    assert settings.database.url.startswith("postgresql+asyncpg://")


def test_dockerfile_installs_the_lock_with_hashes_and_runs_as_a_user() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    assert [line for line in instructions if line.startswith("FROM ")][-1] == (
        "FROM python:3.11-slim"
    )
    text = "\n".join(instructions)
    assert "pip install --require-hashes -r /tmp/run.lock" in text
    assert "COPY requirements/run.lock /tmp/run.lock" in text
    assert "pip install --no-deps" in text
    user = [line for line in instructions if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in {"root", "0"}
    assert (DEPLOY.parent / "requirements" / "run.lock").is_file()


def read_unit(path: Path) -> configparser.ConfigParser:
    # systemd allows repeated keys; strict=False keeps the last, enough for these checks.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_systemd_unit_is_hardened(unit: Path) -> None:
    parsed = read_unit(unit)
    assert parsed.sections() == ["Unit", "Service", "Install"]
    service = parsed["Service"]
    assert service["Type"] == "simple"
    assert service["User"] == "caseclock"
    assert service["EnvironmentFile"] == "/etc/caseclock/caseclock.env"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["PrivateTmp"] == "yes"
    assert "/var/lib/caseclock" in service["ReadWritePaths"].split()
    assert service["ExecStart"].startswith("/opt/caseclock/venv/bin/")
    assert parsed["Install"]["WantedBy"] == "multi-user.target"


def test_both_units_are_there() -> None:
    assert [unit.name for unit in UNITS] == ["caseclock-api.service", "caseclock-worker.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
@pytest.mark.parametrize("unit", UNITS, ids=lambda path: path.name)
def test_systemd_accepts_the_unit(unit: Path, tmp_path: Path) -> None:
    # The venv under /opt/caseclock is not installed here, and verify insists that ExecStart
    # exists: point it at this interpreter, keep every other line as written.
    text = re.sub(
        r"^ExecStart=\S+", f"ExecStart={sys.executable}", unit.read_text(), flags=re.MULTILINE
    )
    copy = tmp_path / unit.name
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    # verify exits 0 on unknown keys and bad values, only warning: any output is a failure.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def compose_command() -> list[str] | None:
    """Compose v2, as the docker plugin or standalone, if this machine has it."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


@pytest.mark.skipif(compose_command() is None, reason="no docker compose here")
def test_compose_renders_with_the_env_example() -> None:
    # Compose's own parser: schema, merge keys and interpolation. Starts nothing.
    command = compose_command()
    assert command is not None
    result = subprocess.run(
        [*command, "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
        cwd=DEPLOY,
    )
    assert (result.returncode, result.stderr) == (0, "")
