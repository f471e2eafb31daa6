"""Step processes die with the run that started them.

Dagster's multiprocess executor starts each step in a child process; if the run worker is killed (kill -9, an OOM
kill), the child would otherwise run on and commit a load nobody is watching any more. On Linux a step process asks
the kernel to kill it when its parent dies (PR_SET_PDEATHSIG); its database transaction is then rolled back by the
server when the connection drops.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """In a child started by multiprocessing (a Dagster step process), arrange to be killed when the parent dies;
    True when armed. Does nothing elsewhere."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return False
    return arm_parent_death_signal(parent.pid)


def arm_parent_death_signal(parent_pid: int) -> bool:
    """Ask the kernel to kill this process when the process `parent_pid` (its parent) dies; True when armed."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
    return True
