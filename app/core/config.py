"""Effective settings, read from the environment (and `.env`) with pydantic-settings.

With nothing configured CelLabel runs in *embedded* mode: a SQLite file and a media folder
under ``./cellabel-data`` and a same-machine worker fed through a folder queue.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("./cellabel-data"), description="Embedded-mode data folder")
    database_url: str = ""
    redis_url: str = ""
    media_root: Path | None = None
    # Where media live: empty for MEDIA_ROOT on this disk, or ``s3://bucket/prefix`` for an
    # S3-compatible store (endpoint, region and keys below or the standard AWS_* variables).
    storage_url: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr | None = None
    # The store as browsers reach it, when that differs from S3_ENDPOINT_URL (containers
    # talk to http://seaweedfs:8333, browsers to https://media.example.com): presigned URLs
    # are signed for this address (the host is part of the signature).
    s3_public_endpoint_url: str = ""
    # With an object store, each host keeps what it reads in a bounded local cache.
    storage_cache_dir: Path | None = None
    storage_cache_bytes: int = 20 * 1024**3
    # A cached copy used this recently is never evicted (a caller may be about to open it),
    # so the cache can pass its size for that long.
    storage_cache_keep_recent_s: float = 5.0
    presigned_url_seconds: int = 900
    # A browser upload straight to the bucket not completed after this long is aborted by the
    # reconciler (its parts dropped); until then the same file picked again resumes it.
    upload_abandoned_after_hours: float = 24.0
    import_root: Path | None = None
    secret_key: SecretStr | None = None
    # Seals stored bucket credentials (app.core.secret_box); derived from SECRET_KEY if unset.
    credentials_key: SecretStr | None = None

    max_upload_bytes: int = 2 * 1024**3
    # Request bodies other than uploads: signed in (JSON, forms) and anonymous (sign-in form).
    max_body_bytes: int = 4 * 1024**2
    max_anonymous_body_bytes: int = 64 * 1024
    max_video_pixels: int = 4096 * 4096
    max_video_seconds: float = 15 * 60
    session_hours: int = 12
    # Password guesses per window: per (name, client address), per name from everywhere (a
    # ceiling against spread-out guessing), and failures per client address over all names.
    login_max_failures: int = 5
    login_max_failures_per_user: int = 50
    login_max_failures_per_client: int = 50
    login_lockout_seconds: int = 300
    cookie_secure: bool = False

    # PostgreSQL limits: no statement, lock wait or idle open transaction holds a connection
    # longer than this, and a request waits at most this long for a pooled connection.
    database_statement_timeout_s: float = 60.0
    database_lock_timeout_s: float = 10.0
    database_idle_timeout_s: float = 300.0
    database_pool_timeout_s: float = 10.0

    # A running job or export build writes a heartbeat every `job_heartbeat_s`; one silent for
    # `job_stale_after_s` lost its worker (killed, machine gone) and is taken over by the
    # reconciler, which runs every `reconcile_every_s` (celery beat): about a minute at worst.
    job_heartbeat_s: float = 10.0
    job_stale_after_s: float = 40.0
    reconcile_every_s: float = 20.0

    # Terminal logs: "text" lines a person reads, or "json" lines for a log collector.
    log_format: Literal["text", "json"] = "text"

    caption_api_url: str = ""
    caption_api_model: str = ""
    caption_api_key: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        # Accept the usual postgres:// spellings and pin the psycopg 3 driver.
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @property
    def embedded(self) -> bool:
        """True when no broker is configured: the worker runs beside the web on this machine."""
        return not self.redis_url

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'cellabel.db').resolve()}"

    @property
    def effective_media_root(self) -> Path:
        return (self.media_root or self.data_dir / "media").resolve()

    @property
    def object_store(self) -> bool:
        """True when media live in an S3-compatible bucket rather than under MEDIA_ROOT."""
        return self.storage_url.startswith("s3://")

    @property
    def effective_storage_cache_dir(self) -> Path:
        return (self.storage_cache_dir or self.data_dir / "cache").resolve()

    @property
    def broker_dir(self) -> Path:
        return (self.data_dir / "broker").resolve()

    def effective_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data folder."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value()
        key_file = self.data_dir / "secret_key"
        if key_file.exists():
            return key_file.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        key_file.write_text(key)
        key_file.chmod(0o600)
        return key

    def public_view(self) -> dict[str, Any]:
        """Settings safe to print: secrets and passwords are masked."""
        view: dict[str, Any] = {
            "mode": "embedded" if self.embedded else "distributed",
            "database_url": _mask_password(self.effective_database_url),
            "redis_url": _mask_password(self.redis_url) or "(unset: embedded worker)",
            "media_root": str(self.effective_media_root),
            "storage_url": self.storage_url or "(unset: media under media_root)",
            "import_root": str(self.import_root.resolve())
            if self.import_root
            else "(unset: no server folder import from the web)",
            "data_dir": str(self.data_dir.resolve()),
            "secret_key": "(set)" if self.secret_key else "(generated, kept in data_dir)",
            "credentials_key": "(set)" if self.credentials_key else "(unset: from secret_key)",
            "max_upload_bytes": self.max_upload_bytes,
            "max_video_pixels": self.max_video_pixels,
            "max_video_seconds": self.max_video_seconds,
            "session_hours": self.session_hours,
            "cookie_secure": self.cookie_secure,
            "https": "Secure cookies, Strict-Transport-Security sent"
            if self.cookie_secure
            else "(off: plain HTTP; set COOKIE_SECURE behind TLS)",
            "login_max_failures": self.login_max_failures,
            "max_body_bytes": self.max_body_bytes,
            "database_statement_timeout_s": self.database_statement_timeout_s,
            "database_lock_timeout_s": self.database_lock_timeout_s,
            "job_heartbeat_s": self.job_heartbeat_s,
            "job_stale_after_s": self.job_stale_after_s,
            "reconcile_every_s": self.reconcile_every_s,
            "caption_api_url": self.caption_api_url or "(unset: built-in captioner)",
            "log_format": self.log_format,
        }
        return view


def _mask_password(url: str) -> str:
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


@lru_cache
def get_settings() -> Settings:
    return Settings()
