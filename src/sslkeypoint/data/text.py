"""Text files the user gives (records, lists, label tables): read as UTF-8, or refused by name.

Every text file the project reads for the user goes through :func:`read_text` (JSON through
:func:`read_json`), so one rule holds everywhere: the file must be UTF-8 (a UTF-8 byte-order mark,
as Excel's "CSV UTF-8" writes, is dropped). Anything else is a ``ValueError`` naming the file,
the first byte that is not UTF-8 and its position, and a guess at what the file is — UTF-16
(Excel's "Unicode text"), Latin-1 / Windows-1252 (older "CSV" saves), or binary data — instead of
a ``UnicodeDecodeError`` without a file name or, worse, text read with the wrong encoding.
"""

from __future__ import annotations

import codecs
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["decode_text", "parse_json", "read_json", "read_text"]

_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}


def _utf16_guess(data: bytes) -> tuple[int, str] | None:
    """Where and how ``data`` looks like UTF-16 or UTF-32: a byte-order mark, or a NUL in every other byte."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return 0, "it looks like UTF-32 (it starts with a UTF-32 byte-order mark)"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return 0, 'it looks like UTF-16, saved by Excel as "Unicode text"?'
    head = data[:512]
    if len(head) >= 4:
        even, odd = head[0::2], head[1::2]
        for zeros, other in ((odd, even), (even, odd)):
            if zeros.count(0) >= 0.9 * len(zeros) and other.count(0) <= 0.1 * len(other):
                return data.index(0), "it looks like UTF-16 without a byte-order mark (a NUL in every other byte)"
    return None


def _is_binary(data: bytes) -> bool:
    """Whether ``data`` holds control bytes that no text file holds (and is not UTF-16)."""
    return _utf16_guess(data) is None and any(b in _CONTROL for b in data[:4096])


def _suffix_hint(name: str) -> str:
    return ' (Excel: "CSV UTF-8")' if name.lower().endswith((".csv", ".tsv", ".txt")) else ""


def decode_text(data: bytes, name: str | os.PathLike[str]) -> str:
    """``data`` as UTF-8 text (a leading UTF-8 byte-order mark dropped), or a ValueError naming ``name``.

    Args:
        data: The file's bytes.
        name: The file, for the message.

    Returns:
        The text.

    Raises:
        ValueError: If ``data`` is not UTF-8 text: the message names the file, the first byte that
            is not UTF-8 and where it is, guesses the encoding (UTF-16 from its byte-order mark or
            its NUL bytes, Latin-1 / Windows-1252 from an accented letter, binary data from control
            bytes) and says to save the file as UTF-8.

    Examples:
        >>> decode_text(b"\\xef\\xbb\\xbfpath,x,y\\n", "labels.csv")
        'path,x,y\\n'
        >>> decode_text("path\\n".encode("utf-16"), "labels.csv")
        Traceback (most recent call last):
        ...
        ValueError: labels.csv: not UTF-8 text (byte 0xff at position 0; it looks like UTF-16, saved by Excel as "Unicode text"?); save it as UTF-8 (Excel: "CSV UTF-8")
        >>> decode_text("path\\ncafé.png\\n".encode("latin-1"), "list.txt")
        Traceback (most recent call last):
        ...
        ValueError: list.txt: not UTF-8 text (byte 0xe9 at position 8, line 2; it looks like Latin-1 or Windows-1252, where this byte is 'é'); save it as UTF-8 (Excel: "CSV UTF-8")
    """
    name = str(name)
    hint = _suffix_hint(name)
    guess = _utf16_guess(data)
    if guess is not None:
        position, what = guess
        raise ValueError(
            f"{name}: not UTF-8 text (byte 0x{data[position]:02x} at position {position}; {what}); "
            f"save it as UTF-8{hint}"
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        position = err.start
        byte = data[position]
        line = data.count(b"\n", 0, position) + 1
        where = f"byte 0x{byte:02x} at position {position}" + (f", line {line}" if line > 1 else "")
        if _is_binary(data):
            raise ValueError(f"{name}: not a text file ({where}; binary data?); expected UTF-8 text") from None
        letter = bytes([byte]).decode("cp1252", errors="replace")
        raise ValueError(
            f"{name}: not UTF-8 text ({where}; it looks like Latin-1 or Windows-1252, where this byte is "
            f"{letter!r}); save it as UTF-8{hint}"
        ) from None
    if "\x00" in text:
        position = text.index("\x00")
        raise ValueError(f"{name}: not a text file (byte 0x00 at character {position}; binary data?); expected UTF-8 text")
    return text


def read_text(path: str | os.PathLike[str]) -> str:
    """The text of a file the user gives, read as UTF-8 (see :func:`decode_text`).

    Args:
        path: The file.

    Returns:
        Its text; a UTF-8 byte-order mark is dropped, line ends are kept as they are (give the text
        to ``csv.reader(io.StringIO(text, newline=""))`` for a CSV file).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not UTF-8 text, naming the file (:func:`decode_text`).

    Examples:
        >>> import tempfile
        >>> f = Path(tempfile.mkdtemp()) / "list.txt"
        >>> _ = f.write_bytes("a.png\\nb.png\\n".encode("utf-8-sig"))
        >>> read_text(f).splitlines()
        ['a.png', 'b.png']
    """
    p = Path(path)
    return decode_text(p.read_bytes(), p)


def parse_json(text: str, name: str | os.PathLike[str]) -> Any:
    """Parse JSON text; a syntax error is a ValueError naming the file, line and column.

    Examples:
        >>> parse_json('{"a": [1, 2]}', "x.json")
        {'a': [1, 2]}
        >>> parse_json('[{"path": "a.png",\\n}]', "x.json")
        Traceback (most recent call last):
        ...
        ValueError: x.json, line 2 column 1: not valid JSON: Expecting property name enclosed in double quotes
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{name}, line {err.lineno} column {err.colno}: not valid JSON: {err.msg}") from None


def read_json(path: str | os.PathLike[str]) -> Any:
    """A JSON file the user gives: :func:`read_text` then :func:`parse_json` (errors name the file).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not UTF-8 text or not valid JSON (file, line and column named).
    """
    return parse_json(read_text(path), path)
