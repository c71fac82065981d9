"""The host name Airflow records for a task: the component's own when several share a host.

``airloop up`` runs two Celery workers on one machine; each gets ``AIRLOOP_COMPONENT_HOSTNAME``
so Airflow's task instances say which worker ran them. Elsewhere (one worker per host or
container) this is the machine's fully qualified name, as Airflow's default.
"""

from __future__ import annotations

import os
import socket


def component_hostname() -> str:
    """``AIRLOOP_COMPONENT_HOSTNAME`` when set, else the fully qualified domain name."""
    return os.environ.get("AIRLOOP_COMPONENT_HOSTNAME") or socket.getfqdn()
