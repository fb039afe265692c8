"""Tests of sslkeypoint.data.records: records files (CSV / JSON) and the text form of a point."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sslkeypoint.data import format_point, parse_point, read_records


def test_read_records_csv_points_and_pairs(tmp_path) -> None:
    f = tmp_path / "points.csv"
    f.write_text('Filename,PS1,PS2,FH1\nimg/a.jpg,"(300, 80)",[200 80],\n/abs/b.png,"(1,2)","(3, 4)","(5.5, 6e1)"\n')
    records, names = read_records(f)
    assert names == ("PS1", "PS2", "FH1")
    assert records[0].path == tmp_path / "img" / "a.jpg" and records[1].path == Path("/abs/b.png")
    np.testing.assert_array_equal(records[1].keypoints, [[1, 2], [3, 4], [5.5, 60]])
    assert np.isnan(records[0].keypoints[2]).all()

    g = tmp_path / "pairs.csv"
    g.write_text("path,PS1_x,PS1_y,PS2_x,PS2_y\na.png,1,2,3,4\nb.png,5,6,,\n")
    records, names = read_records(g)
    assert names == ("PS1", "PS2")
    np.testing.assert_array_equal(records[0].keypoints, [[1, 2], [3, 4]])
    assert np.isnan(records[1].keypoints[1]).all()

    h = tmp_path / "anon.csv"
    h.write_text("path,a,b\nx.png,1,2\n")
    assert read_records(h)[1] is None


def test_read_records_errors_name_file_row_column(tmp_path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text('Filename,PS1,PS2\na.png,"(1, 2)","(3, 4)"\nb.png,"(1, 2)","(3, 4, 5)"\n')
    with pytest.raises(ValueError, match=r"bad\.csv, row 3, column 'PS2'.*\(3, 4, 5\)"):
        read_records(f)
    g = tmp_path / "odd.csv"
    g.write_text("path,x1,y1,x2\na.png,1,2,3\n")
    with pytest.raises(ValueError, match="pairs"):
        read_records(g)
    h = tmp_path / "short.csv"
    h.write_text("path,x1,y1\na.png,1\n")
    with pytest.raises(ValueError, match="row 2: expected 3 columns"):
        read_records(h)
    k = tmp_path / "word.csv"
    k.write_text("path,x1,y1\na.png,1,abc\n")
    with pytest.raises(ValueError, match="row 2, column 'y1'"):
        read_records(k)
    with pytest.raises(FileNotFoundError):
        read_records(tmp_path / "none.csv")


def test_read_records_json(tmp_path) -> None:
    f = tmp_path / "r.json"
    data = {
        "keypoint_names": ["A", "B"],
        "records": [
            {"path": "a.png", "keypoints": [[1, 2], [None, None]], "meta": {"case": 3}},
            {"path": "b.png", "keypoints": [5, 6, 7, 8], "visible": [True, False]},
        ],
    }
    f.write_text(json.dumps(data))
    records, names = read_records(f)
    assert names == ("A", "B") and records[0].meta == {"case": 3}
    assert np.isnan(records[0].keypoints[1]).all()
    np.testing.assert_array_equal(records[1].keypoints, [[5, 6], [7, 8]])
    assert records[1].visible.tolist() == [True, False]
    f.write_text(json.dumps([{"path": "a.png"}]))
    with pytest.raises(ValueError, match="record 0"):
        read_records(f)


def test_parse_point_is_lenient_about_brackets_and_strict_about_content() -> None:
    assert parse_point("(301.5, 72.25)") == (301.5, 72.25)
    assert parse_point(" [ 3 ; 4e1 ] ") == (3.0, 40.0)
    assert parse_point('"{1 2}"') == (1.0, 2.0)
    for bad, why in (("(1, 2, 3)", "3 values"), ("(1, x)", "not a number"), ("(1, nan)", "not finite"), ("", "0 values")):
        with pytest.raises(ValueError, match=rf"label\.csv row 4: expected a point .*\({why}\)"):
            parse_point(bad, where="label.csv row 4")


@given(st.floats(-1e5, 1e5), st.floats(-1e5, 1e5))
def test_format_point_round_trips_to_its_decimals(x: float, y: float) -> None:
    px, py = parse_point(format_point(x, y))
    assert abs(px - x) <= 5e-5 + 1e-9 and abs(py - y) <= 5e-5 + 1e-9


# ------------------------------------------------------------------------------ bad coordinates


@pytest.mark.parametrize("cell", ["inf", "-inf", "Infinity", "1e999"])
def test_infinite_csv_coordinates_are_refused_with_row_and_column(tmp_path, cell) -> None:
    f = tmp_path / "l.csv"
    f.write_text(f"path,x1,y1,x2,y2\na.png,1,2,3,4\nb.png,1,2,{cell},4\n")
    with pytest.raises(ValueError, match=rf"row 3, column 'x2': expected a finite number .* got '{cell}'"):
        read_records(f)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("Infinity", "expected finite numbers"), ("-Infinity", "expected finite numbers"), ("1e999", "expected finite numbers"),
     ("true", "expected numbers, got True"), ('{"x": 1}', "expected numbers")],
)
def test_bad_json_coordinates_are_refused(tmp_path, value, fragment) -> None:
    f = tmp_path / "l.json"
    f.write_text(f'[{{"path": "a.png", "keypoints": [[1, 2]]}}, {{"path": "b.png", "keypoints": [[{value}, 2]]}}]')
    with pytest.raises(ValueError, match=rf"record 1, field 'keypoints': {fragment}"):
        read_records(f)


def test_json_nulls_nan_and_numeric_strings_still_read(tmp_path) -> None:
    f = tmp_path / "l.json"
    f.write_text('[{"path": "a.png", "keypoints": [[null, 2], ["3.5", NaN]]}]')
    (record,), _ = read_records(f)
    assert np.isnan(record.keypoints[0, 0]) and record.keypoints[1, 0] == 3.5 and np.isnan(record.keypoints[1, 1])


def test_json_records_must_agree_on_the_number_of_keypoints(tmp_path) -> None:
    f = tmp_path / "l.json"
    f.write_text(json.dumps([{"path": "a", "keypoints": []}, {"path": "b", "keypoints": [[1, 2], [3, 4]]},
                             {"path": "c", "keypoints": [[1, 2], [3, 4], [5, 6]]}]))
    with pytest.raises(ValueError, match=r"record 2, field 'keypoints': expected K=2 keypoints, as in record 1; got 3"):
        read_records(f)


def test_keypoint_record_refuses_infinite_and_complex_coordinates() -> None:
    from sslkeypoint.data import KeypointRecord

    with pytest.raises(ValueError, match=r"KeypointRecord 'a.png': keypoint 2 is \(3.0, -inf\)"):
        KeypointRecord("a.png", np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, -np.inf]]))
    with pytest.raises(ValueError, match=r"KeypointRecord 'a.png': keypoint 0 is \(inf, 2.0\)"):
        KeypointRecord("a.png", [[float("inf"), 2.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="keypoints must be real"):
        KeypointRecord("a.png", np.array([[1.0, 2.0j]]))
    # NaN (missing), no keypoints, and malformed keypoints that the dataset reports stay accepted.
    assert KeypointRecord("a.png", np.array([[np.nan, np.nan]])).num_keypoints == 1
    assert KeypointRecord("a.png", None).num_keypoints == 0
    assert KeypointRecord("a.png", np.array([["a", "b"]])).num_keypoints == 1


# ------------------------------------------------------------------------------ x/y columns by name

#: Two landmarks, hand-written: PS1 = (20, 10), PS2 = (30, 40).
_COLUMNS = {"PS1_x": "20", "PS1_y": "10", "PS2_x": "30", "PS2_y": "40"}


@pytest.mark.parametrize(("header", "cells", "expected", "names"), [
    # y before x: the names decide, not the order.
    ("image,PS1_y,PS1_x,PS2_x,PS2_y", "10,20,30,40", [[20, 10], [30, 40]], ("PS1", "PS2")),
    # landmarks interleaved; a landmark comes in the order of its first column.
    ("image,PS2_y,PS1_x,PS2_x,PS1_y", "40,20,30,10", [[30, 40], [20, 10]], ("PS2", "PS1")),
    # other spellings of the axis ending, any case of the landmark name.
    ("image,head.Y,head.X,tip y,tip x", "1,2,3,4", [[2, 1], [4, 3]], ("head", "tip")),
    ("image,y1,x1,y2,x2", "1,2,3,4", [[2, 1], [4, 3]], None),
    ("image,y,x", "5,6", [[6, 5]], None),
    # no x/y endings: file order, x first (as before).
    ("image,a,b,c,d", "1,2,3,4", [[1, 2], [3, 4]], None),
])
def test_coordinate_columns_pair_by_header_name(tmp_path, header, cells, expected, names) -> None:
    f = tmp_path / "l.csv"
    f.write_text(f"{header}\na.png,{cells}\n")
    records, got = read_records(f)
    np.testing.assert_array_equal(records[0].keypoints, expected)
    assert got == names


@given(st.permutations(list(_COLUMNS)))
def test_any_column_order_gives_the_same_landmarks(order: list[str]) -> None:
    import tempfile

    f = Path(tempfile.mkdtemp()) / "l.csv"
    f.write_text("image," + ",".join(order) + "\na.png," + ",".join(_COLUMNS[c] for c in order) + "\n")
    records, names = read_records(f)
    by_name = dict(zip(names or (), records[0].keypoints.tolist()))
    assert by_name == {"PS1": [20.0, 10.0], "PS2": [30.0, 40.0]}


@pytest.mark.parametrize("header", ["image,PS1_x,PS1_y,PS2_y,top", "image,a_x,b_y", "image,PS1_y,top"])
def test_coordinate_names_that_contradict_file_order_are_refused(tmp_path, header) -> None:
    f = tmp_path / "l.csv"
    f.write_text(header + "\na.png" + ",1" * (header.count(",")) + "\n")
    with pytest.raises(ValueError, match="names do not pair"):
        read_records(f)


# ------------------------------------------------------------------------------ decimal commas


@pytest.mark.parametrize("cell", ["12,5", "-3,75", "+0,5", "1.234,5", " 12,5 "])
def test_decimal_comma_cells_are_refused_in_every_layout(tmp_path, cell) -> None:
    from sslkeypoint.data.records import is_decimal_comma

    assert is_decimal_comma(cell)
    for name, text, fragment in (
        ("cols.csv", f'image,PS1_x,PS1_y\na.png,"{cell}",3\n', "is a number with a decimal comma"),
        ("points.csv", f'Filename,PS1\na.png,"{cell}"\n', "may be the number"),
        ("anon.csv", f'image,a,b\na.png,"{cell}",3\n', "may be the number"),
        ("anon2.csv", f'image,a,b\na.png,3,"{cell}"\n', "is a number with a decimal comma"),
    ):
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(ValueError, match=rf"{name}, row 2, column '\w+': .*{fragment}.*decimal commas are not read"):
            read_records(f)


@pytest.mark.parametrize(("cell", "point"), [("(12,5)", (12.0, 5.0)), ("12, 5", (12.0, 5.0)),
                                              ("12.5,7.25", (12.5, 7.25)), ("[12;5]", (12.0, 5.0))])
def test_cells_with_brackets_spaces_or_decimal_points_are_points(cell, point) -> None:
    assert parse_point(cell) == point


@given(st.integers(0, 10**6), st.integers(0, 10**6))
def test_two_integers_joined_by_a_bare_comma_are_never_read(a: int, b: int) -> None:
    with pytest.raises(ValueError, match="decimal commas are not read"):
        parse_point(f"{a},{b}")
    assert parse_point(f"({a},{b})") == (float(a), float(b))


# ------------------------------------------------------------------------------ visibility


def test_parse_visible_reads_booleans_01_and_words() -> None:
    from sslkeypoint.data import parse_visible

    got = parse_visible([True, False, 0, 1, 1.0, "Yes", "NO", " true ", "False", "1", "0"], 11)
    assert got.tolist() == [True, False, False, True, True, True, False, True, False, True, False]
    assert parse_visible(np.array([1, 0]), 2).tolist() == [True, False]
    for values, fragment in ((["maybe"], "keypoint 0 is 'maybe'"), ([2], "keypoint 0 is 2"), ([None], "is None"),
                             ([0.5], "is 0.5"), ("yes", "expected a list of 1"), ([True, True], "got 2"),
                             (np.ones((1, 1)), "expected a list of 1")):
        with pytest.raises(ValueError, match=re.escape(fragment)):
            parse_visible(values, 1, "l.json, record 0, field 'visible'")


def test_json_visible_words_are_read_as_written(tmp_path) -> None:
    f = tmp_path / "l.json"
    f.write_text(json.dumps([{"path": "a.png", "keypoints": [[1, 2], [3, 4]], "visible": ["yes", "no"]}]))
    assert read_records(f)[0][0].visible.tolist() == [True, False]
