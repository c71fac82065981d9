"""The serving API: where each use case's service listens and the token it asks for."""

from __future__ import annotations

from pydantic import SecretStr

from airloop.settings.base import SettingsBase


class Serving(SettingsBase):
    """The online API's host, port (one per use case) and token."""

    # Serving: the online API that deploys move to the new champion.
    serving_host: str = "127.0.0.1"
    serving_port: int = 8300
    serving_token: SecretStr | None = None  # required in production

    def usecase_serving_port(self, slot: int | None = None) -> int:
        """The port of the use case at ``slot`` (default: the active one): ``serving_port``,
        the next port for the next of several use cases."""
        return self.serving_port + (self.usecase_slot if slot is None else slot)

    @property
    def serving_url(self) -> str:
        """The active use case's serving API, which deploys and the replay client call."""
        return f"http://{self.serving_host}:{self.usecase_serving_port()}"
