"""The processes of the tier's ``airloop up``, found from /proc: its components by name, a
task's worker, and what each started."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import descendants, running


def children(pid: int) -> set[int]:
    """A process's own children (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found |= {int(child) for child in (task / "children").read_text().split()}
        except FileNotFoundError:
            continue
    return found


def scheduler_of(stack_pid: int) -> int | None:
    """The running ``airflow scheduler`` that ``airloop up`` started, if there is one."""
    for pid in children(stack_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        at = [i for i, arg in enumerate(argv) if arg.endswith(b"/airflow")]
        if at and argv[at[0] + 1 : at[0] + 2] == [b"scheduler"] and running(pid):
            return pid
    return None


def workers_of(stack_pid: int) -> dict[str, int]:
    """The Celery workers ``airloop up`` started, by name: the head of each one's process
    group. Celery retitles its processes (``[celeryd: ...] (... --celery-hostname
    worker-1@%h ...)``, over the environment too), so a worker is known by that name."""
    found = {}
    for pid in children(stack_pid):
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        named = re.search(rb"--celery-hostname (\S+?)@", title)
        if named:
            found[named.group(1).decode()] = pid
    return found


def parent(pid: int) -> int:
    """A process's parent (Linux /proc)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_of(stack_pid: int, task_pid: int) -> set[int]:
    """The component of ``airloop up`` that runs a task's process: the Celery worker (a child
    of ``airloop up``) above it, and every process that worker started."""
    pid = task_pid
    while parent(pid) != stack_pid:
        pid = parent(pid)
        assert pid > 1, f"process {task_pid} does not run under airloop up ({stack_pid})"
    return {pid} | descendants(pid)
