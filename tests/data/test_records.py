"""Tests of sslkeypoint.data.records: records files (CSV / JSON) and the text form of a point."""

from __future__ import annotations

import json
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
