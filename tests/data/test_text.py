"""Tests of sslkeypoint.data.text: the text files users give, read as UTF-8 or refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.data import read_json, read_text
from sslkeypoint.data.text import decode_text, parse_json

# Text a label file may hold: any characters but NUL and U+FEFF (read as a byte-order mark at the start;
# surrogates cannot be encoded).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=200)


@given(TEXT, st.booleans())
def test_utf8_text_reads_back_exactly_with_or_without_a_byte_order_mark(text: str, bom: bool) -> None:
    data = ("\ufeff" if bom else "").encode() + text.encode("utf-8")
    assert decode_text(data, "x.csv") == text


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=100))
def test_utf16_is_refused_with_or_without_a_byte_order_mark(text: str) -> None:
    for encoding, fragment in (("utf-16", "byte 0xff at position 0; it looks like UTF-16, saved by Excel"),
                               ("utf-16-be", "it looks like UTF-16 without a byte-order mark"),
                               ("utf-16-le", "it looks like UTF-16 without a byte-order mark")):
        data = (text * 4).encode(encoding)
        if encoding != "utf-16" and len(data) < 4:
            continue
        with pytest.raises(ValueError, match=r"labels\.csv: not UTF-8 text") as info:
            decode_text(data, "labels.csv")
        assert fragment in str(info.value)


def test_messages_name_the_byte_its_position_and_line() -> None:
    with pytest.raises(ValueError) as info:
        decode_text("a,b\n1,2\nnaïve,3\n".encode("cp1252"), "l.csv")
    assert str(info.value) == (
        "l.csv: not UTF-8 text (byte 0xef at position 10, line 3; it looks like Latin-1 or Windows-1252, where this "
        "byte is 'ï'); save it as UTF-8 (Excel: \"CSV UTF-8\")"
    )
    with pytest.raises(ValueError, match=r"^x\.json: not UTF-8 text \(byte 0xe9 at position 1; .*; save it as UTF-8$"):
        decode_text('"é"'.encode("latin-1"), "x.json")  # no Excel hint for JSON
    with pytest.raises(ValueError, match=r"a\.png: not a text file \(byte 0x89 at position 0; binary data\?\)"):
        decode_text(b"\x89PNG\r\n\x1a\n\x00\x00", "a.png")
    with pytest.raises(ValueError, match=r"UTF-32"):
        decode_text("ab".encode("utf-32"), "l.csv")


def test_read_text_and_read_json_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "labels.json"
    f.write_bytes(b'\xef\xbb\xbf[{"path": "a.png"}]')
    assert read_text(f) == '[{"path": "a.png"}]'
    assert read_json(f) == [{"path": "a.png"}]
    f.write_text('{"a": 1,\n "b": }')
    with pytest.raises(ValueError, match=r"labels\.json, line 2 column 7: not valid JSON: Expecting value"):
        read_json(f)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing.csv")
    assert parse_json("[1]", "x") == [1]
