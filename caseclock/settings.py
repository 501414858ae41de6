"""One settings object, read once at start-up from the environment and passed down.

Variables use the prefix ``CASECLOCK_`` and ``__`` between group and field, for example
``CASECLOCK_TEMPORAL__ADDRESS=temporal:7233`` or ``CASECLOCK_DATABASE__URL=postgresql+asyncpg://...``.
"""

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Placeholders that ship in examples; refused outside development so nobody runs with them.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "dev", "development", "secret"})
DEV_SESSION_SECRET = "caseclock-development-session-secret-not-for-real-use"  # noqa: S105
DEV_ENCRYPTION_KEY = "Y2FzZWNsb2NrLWRldi1rZXktbm90LWZvci1yZWFsISE="  # 32 bytes, base64: dev only


class Environment(StrEnum):
    """Where the engine runs; development relaxes the secret checks, nothing else."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class TemporalSettings(BaseModel):
    """How to reach Temporal and which queue the worker serves."""

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "caseclock"
    # Worker cache: bounds worker memory, not the number of open cases.
    max_cached_workflows: int = 2000
    # Temporal's sandbox re-imports the workflow module for every workflow run it creates
    # and checks calls for non-determinism: about a quarter of the worker's CPU when opening
    # cases (docs/BENCHMARKS.md). The workflow code is deterministic by design, and the test
    # suite runs its workflow tests and replays every recorded history in the sandbox, so a
    # call the sandbox forbids fails a test; workers run without it unless this is set.
    workflow_sandbox: bool = False


class DevServerSettings(BaseModel):
    """The embedded Temporal dev server started by ``caseclock up``."""

    port: int = 7233
    ui_port: int = 8233
    data_dir: Path = Path("var")


class DatabaseSettings(BaseModel):
    """The read model: SQLite by default, PostgreSQL in production."""

    url: str = "sqlite+aiosqlite:///var/caseclock.db"
    echo: bool = False


class ApiSettings(BaseModel):
    """The HTTP API and dashboard; ``public_url`` is what links in alerts point at."""

    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = "http://127.0.0.1:8000"


class AuthSettings(BaseModel):
    """Who may call the API: API tokens for case systems, OpenID Connect for people.

    A person's bearer token is a JWT signed by ``oidc_issuer``'s keys (fetched from
    ``oidc_jwks_url``), for ``oidc_audience``; ``roles_claim`` lists their Caseclock roles
    and ``staff_claim`` names their staff code in the directory. ``bootstrap_admin_token``,
    when set, is accepted as an admin API token so the first real tokens can be issued.
    """

    oidc_issuer: str = ""
    oidc_audience: str = "caseclock"
    oidc_jwks_url: str = ""
    roles_claim: str = "caseclock_roles"
    staff_claim: str = "staff_code"
    bootstrap_admin_token: SecretStr = SecretStr("")
    # Signs the dashboard's session cookie. The default is for development only.
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    # Development only: a sign-in page that lets you choose a person from the directory.
    # Refused outside development; production signs people in with OpenID Connect.
    dev_sign_in: bool = True


class SmtpSettings(BaseModel):
    """Outgoing email for alerts. ``host`` empty disables email."""

    host: str = ""
    port: int = 25
    username: str = ""
    password: SecretStr = SecretStr("")
    starttls: bool = False
    sender: str = "caseclock@localhost"
    timeout_seconds: float = 10.0


class WebhookSettings(BaseModel):
    """Posting alerts to Teams or Slack style incoming webhooks."""

    timeout_seconds: float = 10.0


class EncryptionSettings(BaseModel):
    """Payload encryption keys (AES-GCM). The first key encrypts; all keys decrypt (rotation).

    Each entry is ``key_id:base64key``; the key must decode to 16, 24 or 32 bytes.
    """

    keys: list[SecretStr] = [SecretStr(f"dev:{DEV_ENCRYPTION_KEY}")]


class Settings(BaseSettings):
    """All of Caseclock's settings, grouped."""

    model_config = SettingsConfigDict(
        env_prefix="CASECLOCK_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    temporal: TemporalSettings = TemporalSettings()
    dev_server: DevServerSettings = DevServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    smtp: SmtpSettings = SmtpSettings()
    webhook: WebhookSettings = WebhookSettings()
    encryption: EncryptionSettings = EncryptionSettings()

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> "Settings":
        if self.environment is Environment.DEVELOPMENT:
            return self
        session_secret = self.auth.session_secret.get_secret_value()
        if session_secret in PLACEHOLDER_SECRETS | {DEV_SESSION_SECRET} or len(session_secret) < 32:
            msg = "CASECLOCK_AUTH__SESSION_SECRET is a placeholder or shorter than 32 characters"
            raise ValueError(msg)
        if self.auth.dev_sign_in:
            msg = "CASECLOCK_AUTH__DEV_SIGN_IN must be false outside development"
            raise ValueError(msg)
        bootstrap = self.auth.bootstrap_admin_token.get_secret_value()
        if bootstrap and (bootstrap in PLACEHOLDER_SECRETS or len(bootstrap) < 24):
            msg = "CASECLOCK_AUTH__BOOTSTRAP_ADMIN_TOKEN is a placeholder or shorter than 24"
            raise ValueError(msg)
        for entry in self.encryption.keys:
            key_id, _, key = entry.get_secret_value().partition(":")
            if key in PLACEHOLDER_SECRETS or key == DEV_ENCRYPTION_KEY:
                msg = (
                    f"encryption key {key_id!r} is a placeholder; set CASECLOCK_ENCRYPTION__KEYS "
                    f"to real keys outside development"
                )
                raise ValueError(msg)
        return self
