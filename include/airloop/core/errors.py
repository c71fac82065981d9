"""The one distinction the orchestrator needs from an error: can a retry fix it?"""

from __future__ import annotations


class PermanentError(Exception):
    """An error a retry cannot fix: bad data, a bad use case, a refused request.

    Airflow tasks fail at once on it, with its message, instead of retrying; the CLI prints the
    message without a traceback. Subclasses say what was wrong, where, and what to do next.
    """
