#!/usr/bin/env bash
# Case 2, dPL with dynamic parameters (BETA, BETAET from an LSTM; the rest static), 426 basins,
# on a GPU machine: the LSTM on the GPU, HBV's fused C kernel on the CPU (2 threads per run).
# A: the full configuration of Case2Config.full() (LSTM 64, 30 epochs, lr 3e-3), seeds 0-2;
# B: a larger one (LSTM 256, 40 epochs, lr 2e-3), seeds 0-2. Six runs side by side; the outputs
# are gathered into one json ($OUT/case2_dynamic_device.json). Inputs: the exact .npz export
# (python -m dplpaper.experiments.portable export .device_inputs/case2_daymet_426.npz).
set -u
export PYTHONHASHSEED=0 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
IN=.device_inputs/case2_daymet_426.npz
OUT=${OUT:-runs_device}
mkdir -p "$OUT/A" "$OUT/B"
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"
python -c "from dplpaper.models import hbv_fused as h; print('C kernel', h.available(), h.unavailable_reason())"
run() {  # dir seed [extra args]
  local d=$1 s=$2; shift 2
  timeout "${RUN_LIMIT:-520}" python -m dplpaper.experiments.portable run "$IN" dpl_dynamic --seed "$s" \
    --out "$OUT/$d" --device cpu --net-device cuda --threads 2 "$@" > "$OUT/$d/log_s$s.txt" 2>&1
  echo "$d seed $s rc=$?"
}
for s in 0 1 2; do
  run A "$s" &
  run B "$s" --hidden 256 --epochs 40 --lr 2e-3 &
done
wait
python -m dplpaper.experiments.portable collect "$OUT/case2_dynamic_device.json" "$OUT/A" "$OUT/B"
tail -n 3 "$OUT"/A/log_s*.txt "$OUT"/B/log_s*.txt
python - <<'PY'
import json, os
d = json.load(open(os.path.join(os.environ.get("OUT", "runs_device"), "case2_dynamic_device.json")))
for r in d["runs"]:
    p = r["provenance"]
    print(r["dir"][-1], r["key"], "hidden", p["settings"]["lstm_hidden"], "epochs", p["settings"]["epochs"],
          "NSE %.4f KGE %.4f" % (p["median_nse"], p["median_kge"]), "wall %.0f s" % p["wall_time_s"])
PY
