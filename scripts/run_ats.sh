#!/usr/bin/env bash
# Distil ResNet14 and ResNet110 into VGG8 with asymmetric temperature scaling (tp_tau > t_tau).
# Needs the teachers of run_teacher.sh. Logs to student-kd-ats.log (the spec's lines reuse the TS log).
set -eu
. "$(dirname "$0")/common.sh"

echo "Distill knowledge of teacher network ResNet14 to student network VGG8 using ATS (tp_tau > t_tau) on CIFAR-100 (epoches=$EPOCHES: 2 for demo, 240 for training)"
"$PYTHON" "$ROOT/run_distill.py" --dataset cifar100 --data_dir "$DATA_DIR" --download "$DOWNLOAD" --n_classes 100 --t_net ResNet --t_n_layer 14 --t_net_name ResNet14 --net VGG --n_layer 8 --net_name VGG8 --kd_way ATS --lamb 0.5 --tp_tau 4.0 --t_tau 2.0 --s_tau 1.0 --epoches "$EPOCHES" --lr 0.03 --momentum 0.9 --batch_size 128 --ckpt_dir ./ckpts --log_dir ./logs --log_name student-kd-ats.log --ckpt_name cifar100-ResNet14-VGG8-ATS.ckpt

echo "Distill knowledge of teacher network ResNet110 to student network VGG8 using ATS (tp_tau > t_tau) on CIFAR-100 (epoches=$EPOCHES: 2 for demo, 240 for training)"
"$PYTHON" "$ROOT/run_distill.py" --dataset cifar100 --data_dir "$DATA_DIR" --download "$DOWNLOAD" --n_classes 100 --t_net ResNet --t_n_layer 110 --t_net_name ResNet110 --net VGG --n_layer 8 --net_name VGG8 --kd_way ATS --lamb 0.5 --tp_tau 4.0 --t_tau 2.0 --s_tau 1.0 --epoches "$EPOCHES" --lr 0.03 --momentum 0.9 --batch_size 128 --ckpt_dir ./ckpts --log_dir ./logs --log_name student-kd-ats.log --ckpt_name cifar100-ResNet110-VGG8-ATS.ckpt
