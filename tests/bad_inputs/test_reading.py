"""Bad inputs to reading: text encodings, CSV layouts, duplicated images, visibility values,
rotated photos, dangling links, and images given as tensors or arrays.

Each case writes its few small files into its own folder (a CSV of two rows, a 48-px JPEG, a
link to nowhere) the way a spreadsheet, a phone or a careless copy leaves them.
"""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from iugc_aop.formats import IUGCFormatError, read_iugc
from iugc_aop.formats.iugc import read_label_csv
from sslkeypoint.data import (
    ImageFolderDataset,
    ImageReadError,
    KeypointDataset,
    KeypointRecord,
    read_image,
    read_records,
)
from sslkeypoint.data.formats import write_coco
from sslkeypoint.heatmaps import HeatmapCodec
from sslkeypoint.inference import KeypointPredictor
from tests.bad_inputs.cases import Case, ids, run_case
from tests.bad_inputs.test_example import _labelled

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

NAN = float("nan")


# ------------------------------------------------------------------------------------------------
# Small builders
# ------------------------------------------------------------------------------------------------


def _write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def _records(name: str, text: str, encoding: str = "utf-8") -> Callable[[Path], Any]:
    """A case that writes ``text`` as ``name`` and reads it with :func:`read_records`."""
    return lambda tmp: read_records(_write(tmp, name, text, encoding))


def _with_warnings(call: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """``(result, [warning messages])`` of ``call``."""

    def run(tmp: Path) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call(tmp)
        return result, [str(w.message) for w in caught if issubclass(w.category, UserWarning)]

    return run


def _points(expected: list[list[float]], names: tuple[str, ...] | None) -> Callable[[Any, Path], None]:
    def check(result: Any, tmp: Path) -> None:
        records, got_names = result
        np.testing.assert_allclose(records[0].keypoints, expected)
        assert got_names == names, got_names

    return check


def _visible(expected: list[bool]) -> Callable[[Any, Path], None]:
    def check(result: Any, tmp: Path) -> None:
        records, _ = result
        assert records[0].visible is not None and records[0].visible.tolist() == expected, records[0].visible

    return check


#: A stretch of text that pushes what follows past the first 4096 bytes (read_records' sniffing window).
_LONG = "".join(f"img{i:04d}.png,{i},{i}\n" for i in range(400))


def _image(tmp: Path, name: str = "a.png", size: tuple[int, int] = (48, 32)) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0]), 128, np.uint8)).save(path)
    return path


# -- rotated photos --------------------------------------------------------------------------------

#: EXIF orientation → the transpose that turns the displayed image into the stored one (the inverse
#: of what a viewer applies: 3 turns by 180°, 6 is shown turned 90° clockwise, 8 counter-clockwise).
_STORE = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}


def _displayed(w: int = 64, h: int = 48) -> Image.Image:
    """A smooth grayscale picture with a bright blob at (x, y) = (44, 12): nothing in it is symmetric."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 40 + 60 * xx / w + 30 * yy / h + 120 * np.exp(-((xx - 44) ** 2 + (yy - 12) ** 2) / 18.0)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def _rotated_jpeg(tmp: Path, orientation: int, name: str | None = None) -> Path:
    """``_displayed()`` stored turned, with the EXIF orientation that makes viewers show it upright."""
    path = tmp / (name or f"rotated{orientation}.jpg")
    exif = Image.Exif()
    exif[0x0112] = orientation
    _displayed().transpose(_STORE[orientation]).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def _upright(read: Any, tmp: Path) -> None:
    """The image read is the displayed picture (within JPEG error), not the stored one."""
    expected = np.asarray(_displayed(), np.float32) / 255.0
    got = read[0].numpy()
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert np.abs(got - expected).mean() < 0.02


def _blob_net_predictor() -> KeypointPredictor:
    """One landmark at the brightest place of the image (heatmap = the image, 4x smaller)."""
    codec = HeatmapCodec((64, 64), (16, 16), sigma=1.0, refine="none")
    return KeypointPredictor(torch.nn.AvgPool2d(4), codec, in_chans=1)


def _predicted_on_rotated(tmp: Path) -> Any:
    return _blob_net_predictor().predict(_rotated_jpeg(tmp, 6))


def _blob_in_displayed_pixels(prediction: Any, tmp: Path) -> None:
    assert prediction.original_sizes[0].tolist() == [48, 64]  # (H, W) as displayed
    x, y = prediction.keypoints[0, 0].tolist()
    assert abs(x - 44) <= 3 and abs(y - 12) <= 3, (x, y)  # the blob, in the displayed image's pixels


def _coco_of_rotated(tmp: Path) -> Any:
    path = _rotated_jpeg(tmp, 6)
    out = write_coco([KeypointRecord(path, np.array([[44.0, 12.0]]))], tmp / "coco.json", ["blob"])
    return json.loads(out.read_text())["images"][0]


def _iugc_rotated(tmp: Path) -> Any:
    """IUGC training images shown 64 wide, 48 high; one label at x = 60 (inside), stored turned."""
    root = _labelled(tmp, rows=[["1.jpg", "(60.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "77.0"]])
    folder = root / "Training" / "Labeled cases"
    (folder / "2.jpg").unlink()
    _rotated_jpeg(folder, 6, "1.jpg")
    return read_iugc(root, parts=("train",), progress=False)


def _no_outside_warning(ds: Any, tmp: Path) -> None:
    assert [p.kind for p in ds.problems if p.kind == "outside_image"] == [], [p.message for p in ds.problems]
    assert ds.report["sizes"] == {"64x48": 1}


# -- links to missing files ------------------------------------------------------------------------


def _folder_with_dangling_links(tmp: Path) -> Path:
    folder = tmp / "frames"
    _image(folder, "good.png")
    os.symlink(tmp / "gone" / "a.png", folder / "a.png")
    os.symlink(tmp / "gone" / "b.png", folder / "b.png")
    return folder


def _listed(tmp: Path) -> Any:
    from sslkeypoint.data import list_images

    return _with_warnings(lambda t: list_images(_folder_with_dangling_links(t)))(tmp)


def _links_listed_and_warned(result: Any, tmp: Path) -> None:
    files, messages = result
    assert [f.name for f in files] == ["a.png", "b.png", "good.png"]
    assert any("2 image links in" in m and "point to missing files: a.png, b.png" in m for m in messages), messages


def _pretraining_items(tmp: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = ImageFolderDataset(_folder_with_dangling_links(tmp), size=16, on_error="invalid")
    return [ds[i] for i in range(len(ds))]


def _counted_as_missing_links(items: list[Any], tmp: Path) -> None:
    from sslkeypoint.data import InvalidSample

    bad = [item for item in items if isinstance(item, InvalidSample)]
    assert len(items) == 3 and len(bad) == 2
    assert {b.reason for b in bad} == {"missing file"}
    assert all("link to a missing file" in b.detail for b in bad), [b.detail for b in bad]


def _labelled_link(tmp: Path) -> Any:
    link = tmp / "a.png"
    os.symlink(tmp / "gone.png", link)
    ds = KeypointDataset([KeypointRecord(link, np.array([[1.0, 2.0]]))], (16, 16))
    return ds[0]


def _missing_link_sample(item: Any, tmp: Path) -> None:
    assert item.reason == "missing file" and "link to a missing file" in item.detail, item


def _iugc_predict_link(tmp: Path) -> Any:
    from iugc_aop.predict import predict_images
    from sslkeypoint.data import list_images
    from tests.bad_inputs.test_example import _checkpoint

    folder = _folder_with_dangling_links(tmp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        files = list_images(folder)
    return predict_images(_checkpoint(), files, tmp / "out", root=folder, overlays=False, progress=False)


def _links_skipped(result: Any, tmp: Path) -> None:
    assert result.predicted == 1 and result.total == 3
    assert result.skipped == [("a.png", "link to a missing file"), ("b.png", "link to a missing file")]


def _iugc_labelled_link(tmp: Path) -> Any:
    root = _labelled(tmp)
    folder = root / "Training" / "Labeled cases"
    (folder / "2.jpg").unlink()
    os.symlink(tmp / "gone.jpg", folder / "2.jpg")
    return read_iugc(root, parts=("train",), progress=False)


def _iugc_link_reported(ds: Any, tmp: Path) -> None:
    assert [Path(r.path).name for r in ds.train] == ["1.jpg"]
    (problem,) = [p for p in ds.problems if p.kind == "missing_image"]
    assert problem.severity == "error" and "'2.jpg' (data row 2) is a link to a missing file" in problem.message


def _iugc_frame_link(tmp: Path) -> Any:
    from tests.bad_inputs.test_example import FRAME, _synthetic

    root = _synthetic(tmp / "d")
    (root / FRAME).unlink()
    os.symlink(tmp / "gone.jpg", root / FRAME)
    return read_iugc(root, progress=False)


def _iugc_frame_link_reported(ds: Any, tmp: Path) -> None:
    (problem,) = [p for p in ds.problems if p.kind == "missing_image"]
    assert problem.severity == "error" and "1 frame(s) are links to missing files" in problem.message
    assert ds.report["frame_formats"]["missing"] == 1


# -- duplicates ------------------------------------------------------------------------------------


def _case_clash(result: Any, tmp: Path) -> None:
    (records, _), messages = result
    assert len(records) == 2
    assert any("labels.csv: rows 2 and 3 name" in m and "/A.png' and" in m and "/a.png'" in m
               and "differ only in letter case: one file on macOS and Windows" in m for m in messages), messages


def _iugc_same_image_twice(tmp: Path) -> Any:
    rows = [["1.jpg", "(40.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "87.7"],
            ["2.jpg", "(42.5, 12.0)", "(18.0, 15.5)", "(50.0, 36.0)", "73.1"],
            ["./1.JPG", "(41.0, 10.0)", "(20.0, 14.0)", "(45.0, 40.0)", "87.0"]]
    return read_iugc(_labelled(tmp, rows=rows), parts=("train",), progress=False, check_images=False)


def _repeated_image_reported(ds: Any, tmp: Path) -> None:
    found = [p for p in ds.problems if p.kind == "repeated_image"]
    assert len(found) == 1, [p.message for p in ds.problems]
    assert "data rows 1 and 3" in found[0].message and "'./1.JPG'" in found[0].message


# -- visibility ------------------------------------------------------------------------------------


def _dataset_visible(value: Any) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        path = _image(tmp)
        record = KeypointRecord(path, np.array([[1.0, 2.0], [3.0, 4.0]]), visible=np.asarray(value))
        return KeypointDataset([record], (16, 16))[0]

    return run


def _unparseable_visible(item: Any, tmp: Path) -> None:
    from sslkeypoint.data import InvalidSample

    assert isinstance(item, InvalidSample) and item.reason == KeypointDataset.REASON_UNPARSEABLE, item
    assert "visible" in item.detail and "'maybe'" in item.detail, item.detail


# -- tensors, arrays, image files ------------------------------------------------------------------


def _predictor() -> KeypointPredictor:
    codec = HeatmapCodec((32, 32), (8, 8), sigma=1.0)
    net = torch.nn.Sequential(torch.nn.AvgPool2d(4), torch.nn.Conv2d(1, 3, 1), torch.nn.Sigmoid())
    return KeypointPredictor(net, codec, in_chans=1)


def _with_nans(n: int) -> torch.Tensor:
    t = torch.rand(1, 8, 8)
    t.view(-1)[:n] = NAN
    return t


def _batch_with_one_in_0_255() -> torch.Tensor:
    batch = torch.rand(3, 1, 8, 8)
    batch[1] *= 255.0
    return batch


def _read_iugc_csv(tmp: Path, text: str, encoding: str = "utf-8") -> Any:
    path = _write(tmp, "label.csv", text, encoding)
    return [row.landmarks() for row in read_label_csv(path, ("filename", "PS1", "PS2", "FH1"))]


def _lists(call: str, text: str, encoding: str) -> Callable[[Path], Any]:
    def run(tmp: Path) -> Any:
        from sslkeypoint.cli.lists import listed_files, pixel_size_table

        path = _write(tmp, "list.csv", text, encoding)
        return listed_files(path, tmp) if call == "listed_files" else pixel_size_table(path)

    return run


def _psfhs_cases_csv(tmp: Path) -> Any:
    from iugc_aop.formats.psfhs.cases import _read_cases_csv

    path = _write(tmp, "cases.csv", "case,group\n03744,0\n", "utf-16")
    return _read_cases_csv(path, {}, tmp)


# ------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------

_UTF16 = 'byte 0xff at position 0; it looks like UTF-16, saved by Excel as "Unicode text"?); save it as UTF-8'

CASES: list[Case] = [
    # Text encodings.
    Case("records: a CSV saved by Excel as 'Unicode text' (UTF-16)",
         _records("labels.csv", "path,x,y\na.png,1,2\n", "utf-16"), ValueError, "labels.csv: not UTF-8 text (" + _UTF16),
    Case("records: a Latin-1 CSV whose é comes after the first 4 kB",
         _records("labels.csv", "path,x,y\n" + _LONG + "café.png,1,2\n", "latin-1"), ValueError,
         "labels.csv: not UTF-8 text (byte 0xe9 at position 7792, line 402; it looks like Latin-1"),
    Case("records: a Latin-1 CSV", _records("labels.csv", "path,x,y\ncafé.png,1,2\n", "latin-1"), ValueError,
         "labels.csv: not UTF-8 text (byte 0xe9 at position 12, line 2; it looks like Latin-1 or Windows-1252, "
         "where this byte is 'é'); save it as UTF-8"),
    Case("records: a CSV in UTF-16 without a byte-order mark",
         _records("labels.csv", "path,x,y\na.png,1,2\n", "utf-16-le"), ValueError,
         "labels.csv: not UTF-8 text (byte 0x00 at position 1; it looks like UTF-16 without a byte-order mark"),
    Case("records: a JSON file in UTF-16",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]]}]', "utf-16"), ValueError,
         "labels.json: not UTF-8 text (byte 0xff at position 0; it looks like UTF-16"),
    Case("records: a folder of LabelMe files, one in Latin-1",
         lambda t: read_records(_write(t, "lm/a.json", json.dumps(
             {"imagePath": "é.png", "shapes": [{"label": "p", "points": [[1, 2]]}]}, ensure_ascii=False),
             "latin-1").parent), ValueError,
         "a.json: not UTF-8 text (byte 0xe9 at position 15; it looks like Latin-1"),
    Case("records: a DeepLabCut CSV in UTF-16",
         _records("CollectedData_me.csv", "scorer,me,me\nbodyparts,nose,nose\ncoords,x,y\nimg.png,1,2\n", "utf-16"),
         ValueError, "CollectedData_me.csv: not UTF-8 text (" + _UTF16),
    Case("records: a JSON syntax error names the file, line and column",
         _records("labels.json", '[{"path": "a.png",\n}]'), ValueError,
         "labels.json, line 2 column 1: not valid JSON: Expecting property name"),
    Case("records: a LabelMe file with a JSON syntax error",
         lambda t: read_records(_write(t, "lm/a.json", '{"imagePath": "a.png",\n "shapes": [}').parent), ValueError,
         "a.json, line 2 column 13: not valid JSON"),
    Case("select --labelled: a list file in UTF-16", _lists("listed_files", "path\na.png\n", "utf-16"), ValueError,
         "list.csv: not UTF-8 text (" + _UTF16),
    Case("predict --pixel_size: a Latin-1 table", _lists("pixel_size_table", "filename,pixel_size_mm\né.png,0.1\n",
                                                         "latin-1"), ValueError,
         "list.csv: not UTF-8 text (byte 0xe9 at position 23, line 2"),
    Case("IUGC: a label.csv saved as UTF-16",
         functools.partial(_read_iugc_csv, text="Filename,PS1,PS2,FH1\n1.jpg,(1, 2),(3, 4),(5, 6)\n", encoding="utf-16"),
         IUGCFormatError, "label.csv: not UTF-8 text (" + _UTF16),
    Case("PSFHS: a cases.csv saved as UTF-16", _psfhs_cases_csv, ValueError, "cases.csv: not UTF-8 text (" + _UTF16),
    # CSV coordinates paired by header name.
    Case("records: y before x in the header (PS1_y, PS1_x)",
         _records("labels.csv", "image,PS1_y,PS1_x,PS2_x,PS2_y\na.png,10,20,30,40\n"),
         check=_points([[20.0, 10.0], [30.0, 40.0]], ("PS1", "PS2"))),
    Case("records: y1 before x1 in the header",
         _records("labels.csv", "image,y1,x1,x2,y2\na.png,10,20,30,40\n"), check=_points([[20.0, 10.0], [30.0, 40.0]], None)),
    Case("records: x/y columns that do not pair",
         _records("labels.csv", "image,PS1_x,PS1_y,PS2_y,top\na.png,1,2,3,4\n"), ValueError,
         "labels.csv: columns 'PS2_y' and 'top' are read as one landmark's x and y, but their names do not pair"),
    # Decimal commas.
    Case("records: decimal commas in x/y columns",
         _records("labels.csv", 'image,PS1_x,PS1_y\na.png,"12,5","7,25"\n'), ValueError,
         "labels.csv, row 2, column 'PS1_x': '12,5' is a number with a decimal comma; decimal commas are not read "
         "(write 12.5, with a dot)"),
    Case("records: a decimal comma among '(x, y)' points",
         _records("labels.csv", 'Filename,PS1,PS2\na.png,"(300, 80)","12,5"\n'), ValueError,
         "labels.csv, row 2, column 'PS2': '12,5' may be the number 12.5 written with a decimal comma or the point "
         "(12, 5) written without brackets; decimal commas are not read"),
    Case("records: decimal commas in unnamed columns",
         _records("labels.csv", 'image,a,b\na.png,"12,5","7,25"\n'), ValueError,
         "labels.csv, row 2, column 'a': '12,5' may be the number 12.5"),
    Case("records: a decimal comma with a thousands dot",
         _records("labels.csv", 'image,a,b\na.png,"1.234,5",7\n'), ValueError, "decimal commas are not read"),
    Case("records: a semicolon-separated CSV with decimal commas (a European spreadsheet)",
         _records("labels.csv", "image;PS1_x;PS1_y\na.png;12,5;7,25\n"), ValueError,
         "labels.csv, row 2, column 'PS1_x': '12,5' is a number with a decimal comma"),
    Case("records: a semicolon-separated CSV with dots", _records("labels.csv", "image;PS1_x;PS1_y\na.png;12.5;7.25\n"),
         check=_points([[12.5, 7.25]], ("PS1",))),
    Case("records: a tab-separated CSV", _records("labels.tsv", "image\tPS1_x\tPS1_y\na.png\t12.5\t7.25\n"),
         check=_points([[12.5, 7.25]], ("PS1",))),
    Case("records: a decimal comma in a DeepLabCut file",
         _records("CollectedData_me.csv", 'scorer,me,me\nbodyparts,nose,nose\ncoords,x,y\nimg.png,"12,5",3\n'),
         ValueError, "column 2 (nose x): '12,5' is a number with a decimal comma; decimal commas are not read"),
    Case("IUGC: a decimal comma in a point column",
         functools.partial(_read_iugc_csv, text='Filename,PS1,PS2,FH1\n1.jpg,"12,5","(3, 4)","(5, 6)"\n'),
         IUGCFormatError, "data row 1 (line 2), column 'PS1': '12,5' may be the number 12.5"),
    # Duplicated images.
    Case("records: one image on two rows of a CSV",
         _records("labels.csv", "path,x,y\na.png,1,2\nb.png,3,4\na.png,5,6\n"), ValueError,
         "labels.csv: rows 2 and 4 both label a.png; one image, one row"),
    Case("records: one image spelled two ways (a.png, ./sub/../a.png)",
         _records("labels.csv", "path,x,y\na.png,1,2\n./sub/../a.png,5,6\n"), ValueError,
         "labels.csv: rows 2 and 3 both label a.png; one image, one row"),
    Case("records: one image in two JSON records",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]]}, {"path": "a.png", "keypoints": [[3, 4]]}]'),
         ValueError, "labels.json: records 0 and 1 both label a.png; one image, one record"),
    Case("records: one image under two COCO image ids",
         _records("coco.json", json.dumps({
             "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "a.png"}],
             "annotations": [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2]},
                             {"image_id": 2, "category_id": 1, "keypoints": [3, 4, 2]}],
             "categories": [{"id": 1, "name": "x", "keypoints": ["p"]}]})), ValueError,
         "coco.json: annotations[0] and annotations[1] both label a.png; one image, one annotation"),
    Case("records: A.png and a.png (one file on macOS and Windows)",
         _with_warnings(_records("labels.csv", "path,x,y\nA.png,1,2\na.png,3,4\n")), check=_case_clash),
    Case("IUGC: one image on two rows under two spellings", _iugc_same_image_twice, check=_repeated_image_reported),
    # Visibility values.
    Case("records: 'visible': ['no'] in JSON",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]], "visible": ["no"]}]'),
         check=_visible([False])),
    Case("records: 'visible': ['maybe'] in JSON",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]], "visible": ["maybe"]}]'), ValueError,
         "labels.json, record 0, field 'visible': keypoint 0 is 'maybe'; expected true/false, 1/0 or yes/no"),
    Case("records: 'visible': [2] in JSON",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]], "visible": [2]}]'), ValueError,
         "record 0, field 'visible': keypoint 0 is 2; expected true/false, 1/0 or yes/no"),
    Case("records: 'visible': [[true]] in JSON",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2]], "visible": [[true]]}]'), ValueError,
         "record 0, field 'visible': keypoint 0 is [True]"),
    Case("records: 'visible': ['Yes', 'FALSE', 0, true] in JSON",
         _records("labels.json", '[{"path": "a.png", "keypoints": [[1, 2], [3, 4], [5, 6], [7, 8]], '
                                 '"visible": ["Yes", "FALSE", 0, true]}]'), check=_visible([True, False, False, True])),
    Case("records: COCO visibility flag 5",
         _records("coco.json", json.dumps({
             "images": [{"id": 1, "file_name": "a.png"}],
             "annotations": [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 5]}],
             "categories": [{"id": 1, "name": "x", "keypoints": ["p"]}]})), ValueError,
         "coco.json, annotations[0], field 'keypoints': keypoint 0 ('p') has visibility flag 5; expected 0"),
    Case("dataset: a record built with visible=['no', 'yes']", _dataset_visible(["no", "yes"]),
         check=lambda item, t: item["visible"].tolist() == [False, True] or pytest.fail(str(item["visible"]))),
    Case("dataset: a record built with visible=['no', 'maybe']", _dataset_visible(["no", "maybe"]),
         check=_unparseable_visible),
    # Rotated photos (EXIF orientation).
    Case("image: a JPEG stored turned, EXIF orientation 6", lambda t: read_image(_rotated_jpeg(t, 6)), check=_upright),
    Case("image: a JPEG stored turned, EXIF orientation 8, as bytes",
         lambda t: read_image(_rotated_jpeg(t, 8).read_bytes()), check=_upright),
    Case("image: a JPEG stored upside down, EXIF orientation 3", lambda t: read_image(_rotated_jpeg(t, 3)), check=_upright),
    Case("predict: a photo with EXIF orientation 6", _predicted_on_rotated, check=_blob_in_displayed_pixels),
    Case("write_coco: width and height of a photo with EXIF orientation 6", _coco_of_rotated,
         check=lambda image, t: (image["width"], image["height"]) == (64, 48) or pytest.fail(str(image))),
    Case("IUGC: a label inside a turned image is not 'outside'", _iugc_rotated, check=_no_outside_warning),
    # Links to missing files.
    Case("list_images: two links to missing files", _listed, check=_links_listed_and_warned),
    Case("pre-training: links to missing files are counted", _pretraining_items, check=_counted_as_missing_links),
    Case("dataset: a labelled image that is a link to a missing file", _labelled_link, check=_missing_link_sample),
    Case("IUGC predict: links to missing files are listed as skipped", _iugc_predict_link, check=_links_skipped),
    Case("IUGC: a labelled image that is a link to a missing file", _iugc_labelled_link, check=_iugc_link_reported),
    Case("IUGC: an unlabelled frame that is a link to a missing file", _iugc_frame_link,
         check=_iugc_frame_link_reported),
    # Tensors, arrays and image files.
    Case("predict: a float tensor holding 0-255", lambda t: _predictor().predict(torch.rand(1, 8, 8) * 255), ValueError,
         "image 0: <tensor shape=(1, 8, 8) dtype=torch.float32>: a float image must hold values in [0, 1] (uint8 "
         "images are scaled by 255); it holds ["),
    Case("predict: a (B, C, H, W) batch whose second image holds 0-255",
         lambda t: _predictor().predict(_batch_with_one_in_0_255()), ValueError, "image 1: <tensor shape=(1, 8, 8)"),
    Case("predict: a tensor with 3 NaN values", lambda t: _predictor().predict(_with_nans(3)), ValueError,
         "image 0: <tensor shape=(1, 8, 8) dtype=torch.float32>: 3 values are NaN"),
    Case("predict: a float array with an infinite value",
         lambda t: _predictor().predict([np.zeros((4, 4), np.float32), np.full((4, 4), np.inf, np.float32)]),
         ValueError, "image 1: <array shape=(4, 4) dtype=float32>: 16 values are infinite"),
    Case("predict: an image 0 pixels high", lambda t: _predictor().predict(np.zeros((0, 5), np.uint8)), ValueError,
         "image 0: <array shape=(0, 5) dtype=uint8>: an empty image (H=0, W=5 pixels)"),
    Case("predict: a tensor with no channels", lambda t: _predictor().predict(torch.zeros(0, 4, 5)), ValueError,
         "<tensor shape=(0, 4, 5) dtype=torch.float32>: an image with no channels"),
    Case("predict_batch: a batch holding NaN",
         lambda t: _predictor().predict_batch(torch.full((2, 1, 32, 32), NAN), torch.tensor([[32, 32], [32, 32]])),
         ValueError, "predict_batch: image 0: 1024 values are NaN"),
    Case("predict_batch: a batch of 0-255 floats",
         lambda t: _predictor().predict_batch(torch.rand(1, 1, 32, 32) * 255, torch.tensor([[32, 32]])),
         ValueError, "predict_batch: image 0: a float image must hold values in [0, 1]"),
    Case("predict_batch: original sizes of another shape",
         lambda t: _predictor().predict_batch(torch.rand(2, 1, 32, 32), torch.tensor([32, 32])),
         ValueError, "predict_batch: original_sizes must have shape (B, 2) = (2, 2); got (2,)"),
    Case("image: an empty file", lambda t: read_image(_write(t, "a.png", "")), ImageReadError,
         "a.png: the file is empty (0 bytes)"),
]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_case(case: Case, tmp_path: Path) -> None:
    run_case(case, tmp_path)
