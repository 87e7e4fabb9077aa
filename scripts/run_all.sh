#!/usr/bin/env bash
# The whole pipeline: teachers, student alone, KD+TS, KD+ATS, MindIR export, then the exported
# students' accuracy on the test split. EPOCHES=1 DATA_DIR=... DOWNLOAD=False for a quick check.
set -eu
. "$(dirname "$0")/common.sh"

for step in teacher student ts ats export; do
    bash "$ROOT/scripts/run_$step.sh"
done

echo "Evaluate the exported students on the CIFAR-100 test split"
"$PYTHON" "$ROOT/predict.py" --dataset cifar100 --data_dir "$DATA_DIR" --download "$DOWNLOAD" --n_classes 100 --mindir ./ckpts/cifar100-VGG8_mindir.mindir ./ckpts/cifar100-ResNet14-VGG8-TS_mindir.mindir ./ckpts/cifar100-ResNet110-VGG8-TS_mindir.mindir ./ckpts/cifar100-ResNet14-VGG8-ATS_mindir.mindir ./ckpts/cifar100-ResNet110-VGG8-ATS_mindir.mindir
