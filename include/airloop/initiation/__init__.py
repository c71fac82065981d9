"""Project initiation (A): from a user's table to a use-case folder the engine can run.

``profile`` reads the table and says what it holds, measured by ``times`` and ``measures``
and judged by ``roles`` (what each column is for) and ``findings`` (what looks wrong, in plain
words), into the records of ``records``; ``page`` shows it as ``profile.html``. ``scaffold``
writes the use-case folder, all or nothing: ``plan`` chooses the names and sizes, ``relevance``
ranks the measurements, ``proposal`` writes ``usecase.yaml``, ``example_transform``
``transforms.py``, ``readme`` ``README.md``, and ``selfcheck`` holds the proposal against the
file it came from.
"""

from airloop.initiation.plan import InitOptions
from airloop.initiation.profile import profile_data, read_table
from airloop.initiation.readme import display_path
from airloop.initiation.records import DataProfile, Finding, InitError
from airloop.initiation.scaffold import InitResult, init_usecase

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
