"""The isolated reader's child: calamine (through fastexcel) reads the named sheets, every cell as text, and writes
them to stdout as length-prefixed Arrow IPC streams. Run as a script
(`python -I -S this_file package_folders memory_limit_bytes path sheet…`): without `site`, it finds its packages
in the folders it is given; it limits its own address space before it reads anything (a limit
set by the parent would make subprocess fork the parent instead of spawning); and it imports nothing of the
project, and not polars either (nanoarrow writes fastexcel's Arrow data as it is), so it starts in ~50 ms where
an interpreter with `site` that imports polars takes ~250 ms."""

from __future__ import annotations

import io
import os
import resource
import struct
import sys

PACKAGES = ("fastexcel", "nanoarrow")


def read_frames(path: str, sheets: list[str]) -> list:
    """The sheets as polars frames, in this process (for a caller that does not isolate the reader)."""
    import fastexcel

    reader = fastexcel.read_excel(path)
    return [reader.load_sheet(sheet, header_row=None, dtypes="string").to_polars() for sheet in sheets]


def emit_frames(path: str, sheets: list[str]) -> None:
    import fastexcel
    import nanoarrow
    import nanoarrow.ipc

    reader = fastexcel.read_excel(path)
    out = sys.stdout.buffer
    for sheet in sheets:
        batch = nanoarrow.c_array(reader.load_sheet(sheet, header_row=None, dtypes="string"))
        buffer = io.BytesIO()
        with nanoarrow.ipc.StreamWriter.from_writable(buffer) as writer:
            writer.write_array(batch)
        out.write(struct.pack(">Q", buffer.tell()))
        out.write(buffer.getbuffer())
    out.flush()


if __name__ == "__main__":
    sys.path[:0] = sys.argv[1].split(os.pathsep)
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    emit_frames(sys.argv[3], sys.argv[4:])
