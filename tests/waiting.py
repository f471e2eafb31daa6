"""Polling for a condition another process or session brings about, bounded in time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], done: Callable[[T], bool] = bool, *, seconds: float = 10.0,
               step: float = 0.05) -> T:
    """Call `probe` until `done(value)` holds or `seconds` pass; the last value, for the caller's assertion."""
    deadline = time.monotonic() + seconds
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(step)
        value = probe()
    return value
