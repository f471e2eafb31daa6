"""Reading one sheet as text: every cell a string, with its Excel row number and column letter.

Values come from calamine (through fastexcel, the engine polars uses) with every column typed as string, so
no type is guessed from the first rows. calamine starts its range at the first used cell and keeps blank rows,
so the Excel position of every value follows from where the pre-scan found the data to begin. The read runs in
a child interpreter with a memory limit: a reader that allocates too much kills the child, not the pipeline.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import os
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from vital_pipelines.spreadsheets import _reader_child
from vital_pipelines.spreadsheets._reader_child import read_frames
from vital_pipelines.spreadsheets.safety import SheetInfo, UnsafeWorkbookError, column_letter

ROW = "_row"
READER_MEMORY_LIMIT_BYTES = 4 * 1024**3
READER_TIMEOUT_SECONDS = 300
_CHILD = Path(_reader_child.__file__)


@dataclass
class RawSheet:
    """A sheet's cells as text. `frame` has the Excel row in `_row` and one column per sheet column, named by
    its letter (A, B, …); `header_row` is the Excel row of the first line with data (0 when the sheet is empty).
    `reported_letters` names, for a sheet rewritten by a mapping file, the source column each frame column came
    from (messages name the source's cells, not the rewritten copy's). For a CSV, `_row` is the record's number:
    the row a spreadsheet shows it on."""

    file: str
    sheet: str
    frame: pl.DataFrame
    header_row: int
    reported_letters: dict[str, str] = field(default_factory=dict)
    # a text export's row (its record's number, as a spreadsheet shows it) → the physical line the record starts on,
    # where the two differ (cells holding newlines)
    lines: dict[int, int] = field(default_factory=dict)
    # findings made while the sheet was read or mapped (e.g. keys a normalisation would have merged): warnings
    notes: list = field(default_factory=list)

    def reported(self, letter: str | None) -> str | None:
        return self.reported_letters.get(letter, letter) if letter else letter

    @property
    def letters(self) -> list[str]:
        return [c for c in self.frame.columns if c != ROW]


@functools.cache
def _child_path() -> str:
    """Where the child finds its two packages (it runs without `site`, which would cost it as much as its read
    of a small sheet): the folders this interpreter imports them from, found without importing them."""
    folders = []
    for package in _reader_child.PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise UnsafeWorkbookError(f"the reader needs the package {package}, which is not installed.")
        folder = str(Path(next(iter(spec.submodule_search_locations))).parent)
        if folder not in folders:
            folders.append(folder)
    return os.pathsep.join(folders)


class ReaderChild:
    """The isolated reader started early: a child interpreter under a memory limit that reads `sheets` of `path`
    while the caller goes on (inspecting the same file), so its start-up and the read overlap that work. It is
    started only after the package passed its zip and XML checks; if the sheet scan then refuses the file, the caller
    cancels it and nothing it read is used. Frames come back as length-prefixed Arrow IPC streams."""

    def __init__(self, path: str, sheets: list[str]):
        self.path, self.sheets = path, list(sheets)
        self.process = subprocess.Popen([sys.executable, "-I", "-S", str(_CHILD), _child_path(),
                                         str(READER_MEMORY_LIMIT_BYTES), path, *sheets],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def frames(self) -> list[pl.DataFrame]:
        try:
            out, err = self.process.communicate(timeout=READER_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.cancel()
            raise UnsafeWorkbookError(f"{Path(self.path).name}: reading took longer than {READER_TIMEOUT_SECONDS} s; "
                                      "the file is not a sane workbook.") from None
        if self.process.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
            raise UnsafeWorkbookError(f"{Path(self.path).name}: the reader failed or ran out of memory "
                                      f"(limit {READER_MEMORY_LIMIT_BYTES / 1024**2:,.0f} MiB): {detail[0]}")
        frames, offset, view = [], 0, memoryview(out)
        while offset < len(out):
            (size,) = struct.unpack_from(">Q", out, offset)
            frames.append(pl.read_ipc_stream(io.BytesIO(view[offset + 8: offset + 8 + size])))
            offset += 8 + size
        return frames

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def _read_isolated(path: str, sheets: list[str]) -> list[pl.DataFrame]:
    """Read in a child interpreter under a memory limit."""
    return ReaderChild(path, sheets).frames()


def read_sheets(path: Path, infos: list[SheetInfo], *, isolated: bool = True,
                started: ReaderChild | None = None) -> list[RawSheet]:
    """Several sheets of one workbook, read in one child process (`started`, when it reads exactly these)."""
    path = Path(path)
    wanted = [info for info in infos if info.first_row is not None]
    names = [i.name for i in wanted]
    if started is not None and (not isolated or (started.path, started.sheets) != (str(path), names)):
        started.cancel()
        started = None
    try:
        frames = (started.frames() if started is not None else _read_isolated(str(path), names) if isolated
                  else read_frames(str(path), names))
    except UnsafeWorkbookError:
        raise
    except Exception as error:
        raise UnsafeWorkbookError(f"{path.name}: the reader failed ({error}).") from None
    by_name = {info.name: frame for info, frame in zip(wanted, frames)}
    return [_position(path, info, by_name.get(info.name)) for info in infos]


def read_sheet(path: Path, info: SheetInfo, *, isolated: bool = True) -> RawSheet:
    """All cells of one sheet as strings, positioned by Excel row and column letter."""
    return read_sheets(path, [info], isolated=isolated)[0]


def _position(path: Path, info: SheetInfo, frame: pl.DataFrame | None) -> RawSheet:
    if frame is None or info.first_row is None:
        return RawSheet(path.name, info.name, pl.DataFrame({ROW: []}, schema={ROW: pl.Int64}), 0)
    expected = info.last_row - info.first_row + 1
    if frame.height != expected:
        raise UnsafeWorkbookError(
            f"{path.name} › {info.name}: the reader saw {frame.height} rows where the sheet has {expected}; "
            "row numbers would be unreliable, so the sheet is refused. Re-save it from Excel.")
    first_col = info.first_col or 1
    frame = frame.rename({old: column_letter(first_col + i) for i, old in enumerate(frame.columns)})
    frame = frame.with_columns(pl.int_range(info.first_row, info.first_row + frame.height, dtype=pl.Int64).alias(ROW))
    return RawSheet(path.name, info.name, frame.select([ROW, *[c for c in frame.columns if c != ROW]]), info.first_row)
