"""Project initiation (A): from a user's table to a use-case folder the engine can run.

``profile`` reads the table and says what it holds, ``findings`` what looks wrong, in plain
words, and ``page`` shows both as ``profile.html``; ``scaffold`` proposes the use case from the
profile and writes its folder, all or nothing.
"""

from airloop.initiation.findings import Finding
from airloop.initiation.profile import DataProfile, InitError, profile_data, read_table
from airloop.initiation.scaffold import InitOptions, InitResult, display_path, init_usecase

__all__ = [
    "DataProfile",
    "Finding",
    "InitError",
    "InitOptions",
    "InitResult",
    "display_path",
    "init_usecase",
    "profile_data",
    "read_table",
]
