"""The secrets every Airflow component shares: given (production) or generated per home.

The production profile takes them from the environment and refuses a missing or weak one
(:func:`airloop.settings.production_problems`); the embedded profile generates them once per
home into a file that is never committed.
"""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from pydantic import SecretStr

from airloop.core.files import write_text
from airloop.settings.base import SettingsError
from airloop.settings.folders import Folders


class Keys(Folders):
    """Airflow's Fernet key, api-server secret, JWT secret and admin password."""

    # Shared by every Airflow component; generated per home (embedded), required (production).
    airflow_fernet_key: SecretStr | None = None
    airflow_secret_key: SecretStr | None = None
    airflow_jwt_secret: SecretStr | None = None
    airflow_admin_password: SecretStr | None = None

    def shared_secrets(self) -> dict[str, str]:
        """The secrets every Airflow component shares: from the environment in production,
        generated once per home in the embedded profile. Starting components calls this; only
        reading state never does (it may write the embedded key file)."""
        given = {
            "fernet": self.airflow_fernet_key,
            "secret": self.airflow_secret_key,
            "jwt": self.airflow_jwt_secret,
        }
        if all(v is not None for v in given.values()):
            return {k: v.get_secret_value() for k, v in given.items() if v is not None}
        if self.profile == "production":  # refused by the validator already; never generate
            raise SettingsError(
                "the production profile takes its Airflow secrets from the environment"
            )
        return _stable_keys(self.airflow_home)


def _stable_keys(airflow_home: Path) -> dict[str, str]:
    """Secrets the embedded components share; generated once per home, never committed."""
    path = airflow_home / ".airloop_keys"
    if path.is_file():
        lines = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        if {"fernet", "secret", "jwt"} <= lines.keys():
            return lines
    keys = {
        "fernet": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "secret": secrets.token_urlsafe(32),
        "jwt": secrets.token_urlsafe(64),
    }
    # Written atomically with mode 0600 (a fresh temporary file), so no reader sees half a key.
    write_text(path, "".join(f"{k}={v}\n" for k, v in keys.items()))
    return keys
