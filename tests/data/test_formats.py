"""Tests of sslkeypoint.data.formats: every records format, recognised by content, and COCO writing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslkeypoint.data import FORMATS, KeypointRecord, read_records, write_coco


def _image(path: Path, size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(size[::-1], np.uint8)).save(path)
    return path


def test_coco_is_read_from_content_with_missing_points_and_image_fields(tmp_path) -> None:
    data = {
        "images": [{"id": 7, "file_name": "a.png", "width": 40, "height": 30, "pixel_size_mm": 0.2, "group": "v1"},
                   {"id": 8, "file_name": "b.png", "width": 40, "height": 30},
                   {"id": 9, "file_name": "unlabelled.png", "width": 40, "height": 30}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "keypoints": [1, 2, 2, 0, 0, 0, 5.5, 6, 1]},
                        {"id": 2, "image_id": 8, "category_id": 3, "keypoints": [3, 4, 2, 5, 6, 2, 7, 8, 2]}],
        "categories": [{"id": 3, "name": "pelvis", "keypoints": ["PS1", "PS2", "FH1"], "skeleton": []}],
    }
    f = tmp_path / "export.txt"  # the name says nothing: the content decides
    f.write_text(json.dumps(data))
    records, names = read_records(f)
    assert names == ("PS1", "PS2", "FH1") and len(records) == 2
    assert records[0].path == tmp_path / "a.png" and records[0].group == "v1" and records[0].pixel_size == 0.2
    np.testing.assert_array_equal(records[0].keypoints[[0, 2]], [[1, 2], [5.5, 6]])
    assert np.isnan(records[0].keypoints[1]).all()  # v = 0: not labelled
    assert records[1].group is None and records[1].pixel_size is None


def test_coco_errors_name_the_annotation(tmp_path) -> None:
    base = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "c", "keypoints": ["a", "b"]}]}
    f = tmp_path / "c.json"
    f.write_text(json.dumps({**base, "annotations": [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2]}]}))
    with pytest.raises(ValueError, match=r"annotations\[0\], field 'keypoints': expected 6 numbers .* got 3"):
        read_records(f)
    ann = {"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, 3, 4, 2]}
    f.write_text(json.dumps({**base, "annotations": [ann, ann]}))
    with pytest.raises(ValueError, match=r"annotations\[1\]: a second annotation .* one instance per image"):
        read_records(f)
    f.write_text(json.dumps({**base, "annotations": [{**ann, "image_id": 5}]}))
    with pytest.raises(ValueError, match=r"image_id 5 is not in 'images'"):
        read_records(f)


def test_write_coco_round_trips_records_with_missing_invisible_groups_and_sizes(tmp_path) -> None:
    a, b = _image(tmp_path / "img" / "a.png"), _image(tmp_path / "img" / "b.png", (50, 20))
    records = [
        KeypointRecord(a, np.array([[1.25, 2.5], [np.nan, np.nan]]), None, {}, "s1", 0.1),
        KeypointRecord(b, np.array([[3.0, 4.0], [5.0, 6.0]]), np.array([True, False]), {}, None, (0.1, 0.2)),
    ]
    out = write_coco(records, tmp_path / "coco.json", ["head", "tail"], skeleton=[(0, 1)])
    data = json.loads(out.read_text())
    assert data["images"][1]["file_name"] == "img/b.png" and (data["images"][1]["width"], data["images"][1]["height"]) == (50, 20)
    assert data["annotations"][1]["keypoints"] == [3.0, 4.0, 2, 5.0, 6.0, 1] and data["categories"][0]["skeleton"] == [[1, 2]]
    back, names = read_records(out)
    assert names == ("head", "tail")
    assert [r.path for r in back] == [a, b] and [r.group for r in back] == ["s1", None]
    assert [r.pixel_size for r in back] == [0.1, (0.1, 0.2)]
    np.testing.assert_array_equal(back[0].keypoints, records[0].keypoints)
    np.testing.assert_array_equal(back[1].keypoints, records[1].keypoints)


def test_deeplabcut_single_path_column_and_split_path_columns(tmp_path) -> None:
    project = tmp_path / "project"
    folder = project / "labeled-data" / "video1"
    _image(folder / "img001.png")
    one = folder / "CollectedData_me.csv"
    one.write_text("scorer,me,me,me,me\nbodyparts,PS,PS,FH,FH\ncoords,x,y,x,y\n"
                   "labeled-data/video1/img001.png,12.5,34,,\n")
    records, names = read_records(one)
    assert names == ("PS", "FH") and records[0].path == folder / "img001.png" and records[0].group == "video1"
    np.testing.assert_array_equal(records[0].keypoints[0], [12.5, 34])
    assert np.isnan(records[0].keypoints[1]).all()

    split = folder / "CollectedData_split.csv"
    split.write_text("scorer,,,me,me,me,me\nindividuals,,,a,a,a,a\nbodyparts,,,PS,PS,FH,FH\ncoords,,,x,y,x,y\n"
                     "labeled-data,video1,img001.png,1,2,3,4\n")
    records, names = read_records(split)
    assert names == ("PS", "FH") and records[0].path == folder / "img001.png" and records[0].group == "video1"
    np.testing.assert_array_equal(records[0].keypoints, [[1, 2], [3, 4]])

    bad = folder / "CollectedData_bad.csv"
    bad.write_text("scorer,me,me\nbodyparts,PS,PS\ncoords,x,y\nlabeled-data/video1/img001.png,1,PS\n")
    with pytest.raises(ValueError, match=r"row 4, column 3 \(PS y\): expected a number; got 'PS'"):
        read_records(bad)


def test_labelme_folder_names_from_labels_groups_from_subfolders(tmp_path) -> None:
    def labelme(path: Path, points: dict[str, list[float]]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        shapes = [{"label": k, "points": [v], "shape_type": "point"} for k, v in points.items()]
        shapes.append({"label": "outline", "points": [[0, 0], [1, 1], [2, 0]], "shape_type": "polygon"})
        path.write_text(json.dumps({"version": "5.4", "imagePath": path.with_suffix(".png").name, "shapes": shapes}))

    labelme(tmp_path / "caseA" / "f1.json", {"tip": [1, 2], "base": [3, 4]})
    labelme(tmp_path / "caseB" / "f2.json", {"base": [5, 6]})
    records, names = read_records(tmp_path)
    assert names == ("tip", "base") and [r.group for r in records] == ["caseA", "caseB"]
    assert records[1].path == tmp_path / "caseB" / "f2.png"
    np.testing.assert_array_equal(records[1].keypoints[1], [5, 6])
    assert np.isnan(records[1].keypoints[0]).all()
    single, _ = read_records(tmp_path / "caseA" / "f1.json")
    assert len(single) == 1 and single[0].group is None
    (tmp_path / "caseA" / "f1.json").write_text(json.dumps({"imagePath": "f1.png", "shapes": [
        {"label": "tip", "points": [[1, 2]]}, {"label": "tip", "points": [[3, 4]]}]}))
    with pytest.raises(ValueError, match=r"f1\.json, shapes\[1\]: a second point labelled 'tip'"):
        read_records(tmp_path)


def test_own_csv_reads_group_and_pixel_size_columns(tmp_path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("filename,subject,pixel_size_mm,a_x,a_y\nx.png,12,0.25,1,2\ny.png,,,3,4\n")
    records, names = read_records(f)
    assert names == ("a",) and [r.group for r in records] == ["12", None] and [r.pixel_size for r in records] == [0.25, None]
    f.write_text("filename,pixel_size_mm,a_x,a_y\nx.png,-1,1,2\n")
    with pytest.raises(ValueError, match=r"row 2, column 'pixel_size_mm': expected a positive, finite size"):
        read_records(f)


def test_own_json_reads_group_and_pixel_size(tmp_path) -> None:
    f = tmp_path / "r.json"
    f.write_text(json.dumps([{"path": "a.png", "keypoints": [[1, 2]], "group": 4, "pixel_size_mm": [0.1, 0.2]}]))
    (r,), _ = read_records(f)
    assert r.group == "4" and r.pixel_size == (0.1, 0.2)


def test_sleap_io_files_are_read_through_the_extra(tmp_path) -> None:
    sio = pytest.importorskip("sleap_io")
    frames = [_image(tmp_path / f"f{i}.png") for i in range(2)]
    skeleton = sio.Skeleton(["nose", "tail"])
    video = sio.Video.from_filename([str(f) for f in frames])
    instance = sio.Instance.from_numpy(np.array([[1.0, 2.0], [np.nan, np.nan]]), skeleton=skeleton)
    labels = sio.Labels([sio.LabeledFrame(video=video, frame_idx=1, instances=[instance])])
    sio.save_file(labels, str(tmp_path / "labels.slp"))
    records, names = read_records(tmp_path / "labels.slp")
    assert names == ("nose", "tail") and len(records) == 1 and Path(records[0].path).name == "f1.png"
    np.testing.assert_array_equal(records[0].keypoints[0], [1, 2])
    assert np.isnan(records[0].keypoints[1]).all()


def test_a_file_of_no_known_format_names_what_was_found_and_the_formats(tmp_path) -> None:
    f = tmp_path / "x.json"
    f.write_text(json.dumps({"frames": [], "labels": {}}))
    with pytest.raises(ValueError, match=r"found a JSON object with keys \['frames', 'labels'\].*Accepted: csv: .*coco: "):
        read_records(f)
    g = tmp_path / "x.bin"
    g.write_bytes(b"\x00\x01binary")
    with pytest.raises(ValueError, match="not a records file of a format read here"):
        read_records(g)
    with pytest.raises(ValueError, match="format must be one of"):
        read_records(f, format="yaml")
    assert set(FORMATS) == {"csv", "json", "coco", "deeplabcut", "labelme", "sleap"}


def test_coco_of_real_images_reads_back_and_matches_the_decoded_sizes(shared_data, tmp_path) -> None:
    """A COCO file written for real HC18 frames reads back to the same records; sizes match the decoder."""
    from sslkeypoint.data import read_image

    images = sorted((shared_data / "hc18" / "images").glob("*.png"))[:3]
    records = [KeypointRecord(p, np.array([[10.0 + i, 20.0], [30.0, 40.5 + i]]), None, {}, f"g{i}", 0.1 + i / 10)
               for i, p in enumerate(images)]
    out = write_coco(records, tmp_path / "coco.json", ["a", "b"])
    data = json.loads(out.read_text())
    back, _ = read_records(out)
    assert [Path(r.path).resolve() for r in back] == [p.resolve() for p in images]
    for entry, record in zip(data["images"], back):
        image = read_image(record.path)
        assert image.shape[-2:] == (entry["height"], entry["width"]) == (540, 800)
        assert record.pixel_size == entry["pixel_size_mm"]


# ------------------------------------------------------------------------------ one image, one record


def test_one_image_labelled_twice_is_refused_in_every_format(tmp_path) -> None:
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"}, {"id": 3, "file_name": "./a.png"}],
            "annotations": [{"image_id": i, "category_id": 1, "keypoints": [1, 2, 2]} for i in (1, 2, 3)],
            "categories": [{"id": 1, "name": "x", "keypoints": ["p"]}]}
    dlc = "scorer,me,me\nbodyparts,p,p\ncoords,x,y\nlabeled-data/v/a.png,1,2\nlabeled-data/v/a.png,3,4\n"
    for name, text, fragment in (
        ("l.csv", "path,x,y\na.png,1,2\nsub/../a.png,3,4\n", "l.csv: rows 2 and 3 both label a.png; one image, one row"),
        ("l.json", json.dumps([{"path": "b.png", "keypoints": [[1, 2]]}, {"path": str(tmp_path / "b.png"),
                                                                           "keypoints": [[1, 2]]}]),
         "l.json: records 0 and 1 both label b.png; one image, one record"),
        ("coco.json", json.dumps(coco), "coco.json: annotations[0] and annotations[2] both label a.png; one image, "
                                        "one annotation"),
        ("CollectedData_me.csv", dlc, "CollectedData_me.csv: rows 4 and 5 both label a.png; one image, one row"),
    ):
        f = tmp_path / name
        f.write_text(text)
        with pytest.raises(ValueError, match=re.escape(fragment)):
            read_records(f)
    folder = tmp_path / "lm"
    for stem in ("one", "two"):
        (folder / stem).mkdir(parents=True)
        (folder / stem / "l.json").write_text(json.dumps({"imagePath": "../a.png", "shapes": []}))
    with pytest.raises(ValueError, match=r"lm: files .*one/l\.json and .*two/l\.json both label a\.png; one image, one file"):
        read_records(folder)


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_links_to_one_file_are_one_image(tmp_path, link) -> None:
    _image(tmp_path / "a.png")
    if link == "symlink":
        (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    else:
        (tmp_path / "b.png").hardlink_to(tmp_path / "a.png")
    f = tmp_path / "l.csv"
    f.write_text("path,x,y\na.png,1,2\nb.png,3,4\n")
    with pytest.raises(ValueError, match=r"rows 2 and 3 both label a\.png"):
        read_records(f)


def test_paths_differing_only_in_case_warn_once_naming_both(tmp_path) -> None:
    f = tmp_path / "l.csv"
    f.write_text("path,x,y\nA.png,1,2\nb.png,3,4\nimg/C.png,5,6\na.png,7,8\nIMG/c.png,9,10\n")
    with pytest.warns(UserWarning) as caught:
        records, _ = read_records(f)
    assert len(records) == 5 and len(caught) == 1
    message = str(caught[0].message)
    assert "rows 2 and 5 name" in message and "rows 4 and 6 name" in message and "differ only in letter case" in message


def test_coco_visibility_flags_other_than_0_1_2_are_refused(tmp_path) -> None:
    data = {"images": [{"id": 1, "file_name": "a.png"}],
            "annotations": [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 2, 3, 4, -1]}],
            "categories": [{"id": 1, "name": "x", "keypoints": ["p", "q"]}]}
    f = tmp_path / "coco.json"
    f.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"annotations\[0\], field 'keypoints': keypoint 1 \('q'\) has visibility flag -1"):
        read_records(f)


def test_write_coco_sizes_are_the_displayed_sizes(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("L", (40, 30)).save(tmp_path / "turned.jpg", "JPEG", exif=exif.tobytes())
    out = write_coco([KeypointRecord(tmp_path / "turned.jpg", np.array([[1.0, 2.0]]))], tmp_path / "c.json", ["p"])
    image = json.loads(out.read_text())["images"][0]
    assert (image["width"], image["height"]) == (30, 40)
