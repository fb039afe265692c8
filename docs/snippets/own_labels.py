"""Bring your own labels, in Python: a COCO export to an evaluated model and an ONNX file."""

from sslkeypoint import FinetuneConfig, KeypointPredictor, export_onnx, read_records, run_finetuning
from sslkeypoint.measures import DistanceMeasure
from sslkeypoint.metrics import evaluate

train, names = read_records("coco_train.json")  # COCO, DeepLabCut, LabelMe, CSV: told by content
test, _ = read_records("coco_test.json")
config = FinetuneConfig.profile(
    "cpu",  # a small network that trains in minutes on a CPU ("paper": the GPU schedule)
    num_keypoints=len(names),
    keypoint_names=names,
    measures={"width": DistanceMeasure(2, 3), "height": DistanceMeasure(0, 1)},
)
result = run_finetuning(config, train, "runs/head_py")  # validation split by group when known
print(result.split)

predictor = KeypointPredictor.from_checkpoint(result.best_checkpoint)
scores = evaluate(predictor, test)  # errors in px, and in mm with each image's pixel size
print(scores.table)
scores.save("runs/head_py/test")  # metrics.json, per_image.csv, table.txt, errors.png
export_onnx(predictor, "head_py.onnx", original_pixels=True)  # deploys with onnxruntime alone
