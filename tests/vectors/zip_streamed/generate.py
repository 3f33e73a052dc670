"""Writes streamed.zip to stdout: a zip as a tool that cannot seek makes it.

Python's zipfile writing to a pipe sets bit 3 (sizes and CRC in a data descriptor after the data)
on every entry, stored ones included. `inner.zip` is itself such a zip, so its bytes hold the data
descriptor signature PK\\x07\\x08 followed by a CRC that is not the outer entry's: a streaming reader
must keep scanning past it (libarchive checks the CRC after the signature to know it found the
end). The content is fixed, so the output is the same on every run.
"""
import io
import sys
import zipfile


class Pipe(io.RawIOBase):
    """A write-only stream that cannot seek or tell, like a pipe."""

    def __init__(self, out):
        self.out = out

    def writable(self):
        return True

    def write(self, b):
        self.out.write(b)
        return len(b)


def streamed(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(Pipe(buf), "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 12, 6, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            with z.open(info, "w") as f:
                f.write(data)
    return buf.getvalue()


inner = streamed([("readme.txt", b"inside the inner zip\n" * 40),
                  ("data.bin", bytes(range(256)) * 16)])
assert b"PK\x07\x08" in inner
outer = streamed([("index.html", b"<html>streamed</html>\n"),
                  ("assets/inner.zip", inner),
                  ("z.txt", b"after the nested zip\n")])
sys.stdout.buffer.write(outer)
