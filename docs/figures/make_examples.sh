#!/usr/bin/env bash
# Regenerates the example figures of docs/analysis.md from a SHORT run on GENERATED data (no CIFAR-100):
# 5,000 training / 1,000 test images in the CIFAR-100 python format, made by tests/cifar_fixtures.py
# (each class a fixed colour plus pixel noise), teachers ResNet8 and ResNet20 trained for 8 epochs,
# distillation into ResNet8 for 3 epochs per sweep cell. The figures show what the tools draw, not
# the paper's results. Usage: bash docs/figures/make_examples.sh [WORK_DIR]  (about 40 min on 2 busy cores)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-./example_run}"
py="${PYTHON:-python}"
mkdir -p "$work" && cd "$work"

"$py" -c "import sys; sys.path.insert(0, '$repo/tests'); from cifar_fixtures import write_cifar100; \
write_cifar100('data', n_train=5000, n_test=1000, n_classes=100)"
data=(--data_dir data --download False --lr 0.05 --batch_size 128)

for depth in 8 20; do
  [ -f "ckpts/cifar100-ResNet$depth.ckpt" ] || "$py" "$repo/run_classify.py" "${data[@]}" --net ResNet \
    --n_layer "$depth" --net_name "ResNet$depth" --epoches 8 --seed 0 \
    --ckpt_name "cifar100-ResNet$depth.ckpt" --log_name "teacher-ResNet$depth.log"
done

"$py" "$repo/analyze_teacher.py" --data_dir data --download False --t_net ResNet \
  --t_n_layer 8 --t_n_layer 20 --out_dir analysis

student=("${data[@]}" --t_net ResNet --t_n_layer 20 --t_net_name ResNet20 --net ResNet --n_layer 8
         --net_name ResNet8 --epoches 3 --out_dir sweep)
"$py" "$repo/sweep.py" "${student[@]}" --tp_taus 1,2,3,4 --t_taus 1,2,3 --seed 0
"$py" "$repo/sweep.py" "${student[@]}" --tp_taus 2,4 --t_taus 2 --seed 1     # second seed: TS 2/2, ATS 4/2
"$py" "$repo/sweep.py" "${student[@]}" --tp_taus 1,2,3,4 --t_taus 1,2,3 --seed 0  # redraw with both seeds

logs=sweep/logs/cifar100-ResNet20-ResNet8
"$py" "$repo/plot_runs.py" "$logs-tp2-t2-s0.metrics.jsonl" "$logs-tp2-t2-s1.metrics.jsonl" \
  "$logs-tp4-t2-s0.metrics.jsonl" "$logs-tp4-t2-s1.metrics.jsonl" --ckpt_dir sweep/ckpts --out curves.png

cp analysis/teacher_stats.png "$repo/docs/figures/teacher_stats.png"
cp sweep/sweep_heatmap.png "$repo/docs/figures/sweep_heatmap.png"
cp curves.png "$repo/docs/figures/curves.png"
