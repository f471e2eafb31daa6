"""The isolated reader's child: calamine (through fastexcel) reads the named sheets, every cell as text, and writes
them to stdout as length-prefixed Arrow IPC. Run as a script (`python -I this_file path sheet…`): it imports
nothing of the project, so the child starts in the time polars and fastexcel take to import."""

from __future__ import annotations

import io
import struct
import sys


def read_frames(path: str, sheets: list[str]) -> list:
    import fastexcel

    reader = fastexcel.read_excel(path)
    return [reader.load_sheet(sheet, header_row=None, dtypes="string").to_polars() for sheet in sheets]


def emit_frames(path: str, sheets: list[str]) -> None:
    out = sys.stdout.buffer
    for frame in read_frames(path, sheets):
        buffer = io.BytesIO()
        frame.write_ipc(buffer)
        out.write(struct.pack(">Q", buffer.tell()))
        out.write(buffer.getbuffer())
    out.flush()


if __name__ == "__main__":
    emit_frames(sys.argv[1], sys.argv[2:])
