"""Benchmark: a steward's fix in the portal applied to the workbook, beside openpyxl's load and save of it.

    .venv/bin/python bench/edit_cells.py [--repeat 3]

The sample personas at ×1, ×10 and ×100 (`samples.generate`, as the other benchmarks grow them); two cells edited (a name, a title)
by the project's package patch (`spreadsheets.edits.apply_edits`: only the sheet's XML is rewritten) and by the bare
library a steward's tool would use (openpyxl: load, set, save). Medians in seconds, and how each grows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from samples.generate import _header, _rows, _write, persona_records  # noqa: E402
from vital_pipelines.spreadsheets.contracts import PERSONAS  # noqa: E402
from vital_pipelines.spreadsheets.edits import CellEdit, _edit_with_openpyxl, apply_edits  # noqa: E402


def _grown(target: Path, factor: int) -> int:
    """The sample personas at `factor` × their size, as the generator writes them for the other benchmarks."""
    records = persona_records(factor)
    _write(target, {PERSONAS.sheet: (_header(PERSONAS), _rows(PERSONAS, records))})
    return len(records)


def _median(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    edits = [CellEdit("personas", "B5", "Ana Ruiz"), CellEdit("personas", "C9", "Medical Science Liaison")]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for factor in (1, 10, 100):
            path = Path(folder) / f"personas_x{factor}.xlsx"
            rows = _grown(path, factor)
            results.append({"factor": factor, "rows": rows, "bytes": path.stat().st_size,
                            "package_patch_s": round(_median(lambda: apply_edits(path, edits), args.repeat), 3),
                            "openpyxl_s": round(_median(lambda: _edit_with_openpyxl(path, edits), args.repeat), 3)})
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
