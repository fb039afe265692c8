python -m sslkeypoint finetune --config own_labels.yaml
python -m sslkeypoint evaluate --model runs/head --records coco_test.json --out runs/head/test
python -m sslkeypoint predict --model runs/head --images new_images --pixel_size pixel_size.csv --out predictions.csv --overlays overlays
python -m sslkeypoint export --model runs/head --out head.onnx --check_images new_images
