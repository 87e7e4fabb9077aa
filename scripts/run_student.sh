#!/usr/bin/env bash
# Train the student VGG8 alone on CIFAR-100, without distillation (the baseline).
set -eu
. "$(dirname "$0")/common.sh"

echo "Train student network VGG8 on CIFAR-100 without KD (epoches=$EPOCHES: 2 for demo, 240 for training)"
"$PYTHON" "$ROOT/run_classify.py" --dataset cifar100 --data_dir "$DATA_DIR" --download "$DOWNLOAD" --n_classes 100 --net VGG --n_layer 8 --net_name VGG8 --epoches "$EPOCHES" --lr 0.03 --momentum 0.9 --batch_size 128 --ckpt_dir ./ckpts --log_dir ./logs --log_name student-nokd.log --ckpt_name cifar100-VGG8.ckpt
