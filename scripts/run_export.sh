#!/usr/bin/env bash
# Export the five students (alone, TS and ATS from each teacher) to MindIR for CPU inference:
# ./ckpts/<checkpoint stem>_mindir.mindir. Needs the checkpoints of run_student.sh, run_ts.sh, run_ats.sh.
set -eu
. "$(dirname "$0")/common.sh"

echo "Export the student networks VGG8 to MindIR"
"$PYTHON" "$ROOT/export.py" --device CPU --n_classes 100 --net VGG --n_layer 8 --net_name VGG8 --ckpt_dir ./ckpts --file_format MINDIR --ckpt_name cifar100-VGG8.ckpt cifar100-ResNet14-VGG8-TS.ckpt cifar100-ResNet110-VGG8-TS.ckpt cifar100-ResNet14-VGG8-ATS.ckpt cifar100-ResNet110-VGG8-ATS.ckpt
