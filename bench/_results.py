"""Where benchmarks leave their figures: printed, and kept as bench/results/<name>.json (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, result: dict) -> None:
    text = json.dumps(result, indent=2)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(text)
