"""Benchmark: peak memory and time to inspect, read and validate one large personas workbook (×1000: 335,000
rows, about 25 MB), through the same isolated reader the pipeline uses.

    .venv/bin/python bench/large_workbook.py [--scale 1000]

Each stage's peak RSS is reported: this process after inspecting, reading and validating, and the reader's child
process separately (its address space is capped at READER_MEMORY_LIMIT_BYTES).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_pipelines.spreadsheets.contracts import PERSONAS  # noqa: E402
from samples.generate import PERSONA_COUNT as PERSONAS_PER_SCALE  # noqa: E402
from samples.generate import _header, _rows, _write, persona_records  # noqa: E402
from vital_pipelines.spreadsheets.safety import inspect_workbook  # noqa: E402
from vital_pipelines.spreadsheets.validation import open_sheets, validate_sheet  # noqa: E402


def _peak_mib(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _generate(path: Path, scale: int) -> None:
    header, rows = _header(PERSONAS), _rows(PERSONAS, persona_records(scale))
    _write(path, {PERSONAS.sheet: (header, rows)})


def _measure(path: Path, scale: int) -> dict:
    with zipfile.ZipFile(path) as archive:
        inflated = sum(entry.file_size for entry in archive.infolist())
    figures = {"scale": scale, "rows": PERSONAS_PER_SCALE * scale, "file_mib": round(path.stat().st_size / 2**20, 1),
               "decompressed_mib": round(inflated / 2**20, 1), "main_before_mib": _peak_mib(resource.RUSAGE_SELF)}
    started = time.perf_counter()
    info = inspect_workbook(path)
    figures["inspect_s"] = round(time.perf_counter() - started, 2)
    figures["inspect_peak_mib"] = _peak_mib(resource.RUSAGE_SELF)
    started = time.perf_counter()
    raw = open_sheets(path, info, (PERSONAS,), isolated=True)[PERSONAS.sheet]
    figures["read_s"] = round(time.perf_counter() - started, 2)
    figures["reader_child_peak_mib"] = _peak_mib(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = validate_sheet(raw, PERSONAS, {})
    figures["validate_s"] = round(time.perf_counter() - started, 2)
    figures["valid_rows"] = result.valid.height
    figures["main_peak_mib"] = _peak_mib(resource.RUSAGE_SELF)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1000)
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(Path(args.generate), args.scale)
    elif args.measure:
        print(json.dumps(_measure(Path(args.measure), args.scale)))
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "personas.xlsx"
            # Generation and measurement in processes of their own: neither's memory counts against the other.
            for mode in ("--generate", "--measure"):
                subprocess.run([sys.executable, __file__, "--scale", str(args.scale), mode, str(path)], check=True)


if __name__ == "__main__":
    main()
