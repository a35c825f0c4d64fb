"""The text of the files people copy, mail and edit: license, options, key files.

They are UTF-8.  A byte order mark before the first line (some Windows
editors write one) is invisible in an editor and means nothing, so it is
dropped.  A file in UTF-16, which Windows PowerShell 5 writes with ``>`` and
``Out-File``, is named as such with what to do, as is any other text that
is not UTF-8, with the line it goes wrong on.
"""

from __future__ import annotations

import codecs

UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class NotText(ValueError):
    """A file's bytes are not UTF-8 text; :meth:`at` names the file (and the line)."""

    def __init__(self, message: str, lineno: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.lineno = lineno

    def at(self, path: object) -> str:
        where = f"{path}:{self.lineno}" if self.lineno else f"{path}"
        return f"{where}: {self.message}"


def decode(data: bytes, kind: str) -> str:
    """The text of a file's bytes, else :class:`NotText` saying what is wrong
    and what to do.  ``kind`` is what the file should be: "a license file"."""
    if b"\0" in data:  # no text file people edit holds one; UTF-16 of ASCII is half NULs
        bad = data.index(b"\0")
    else:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            bad = exc.start
    if data[:2] in UTF16_BOMS or b"\0" in data[:2]:
        raise NotText(
            "UTF-16 text (as Windows PowerShell writes with '>' or Out-File); "
            "save it as UTF-8 (in PowerShell: Set-Content -Encoding utf8)"
        )
    raise NotText(f"not UTF-8 text; is this {kind}?", data.count(b"\n", 0, bad) + 1)
