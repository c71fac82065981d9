"""Print a .env for docker-compose.yml with every secret generated here: nothing is shipped.

    python docker/new-env.py > .env

Each value is new (os.urandom); keep the file private (chmod 600) and in your secret store.
The names and what each is for are in .env.example.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys


def main() -> None:
    """Write the variables, one a line."""
    redis_password = secrets.token_urlsafe(24)
    values = {
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": redis_password,
        "CELERY_BROKER_URL": f"redis://:{redis_password}@127.0.0.1:6379/0",
        "FEAST_REDIS_URL": f"127.0.0.1:6379,db=1,password={redis_password}",
        "AIRFLOW_FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW_JWT_SECRET": secrets.token_urlsafe(64),
        "AIRFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(16),
        "SERVING_TOKEN": secrets.token_urlsafe(24),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(16),
    }
    sys.stdout.write("".join(f"{k}={v}\n" for k, v in values.items()))


if __name__ == "__main__":
    main()
