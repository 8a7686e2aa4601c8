#!/usr/bin/env bash
# Case 3 (PUB), full mode, dPL gA + HBV only, Daymet, 426 basins in 10 folds: the 20 trainings
# (10 held-out folds x the 8- and 27-attribute sets, seed 0) side by side on a 16-core machine,
# one thread each; the same driver as `dplpaper run case3 --mode full --parts pub --methods dpl`
# (run_pub_folds), on the exact .npz export of the inputs. Outputs gathered into one json.
set -u
export PYTHONHASHSEED=0 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
IN=.device_inputs/case2_daymet_426.npz
OUT=${OUT:-runs_device}
mkdir -p "$OUT/pub"
python -c "from dplpaper.models import hbv_fused as h; print('C kernel', h.available(), h.unavailable_reason())"
for f in 0 1 2 3 4 5 6 7 8 9; do
  for a in 8 27; do
    ( timeout "${RUN_LIMIT:-340}" python -m dplpaper.experiments.portable case3-pub "$IN" --fold "$f" --attributes "$a" \
        --out "$OUT/pub" --threads 1 > "$OUT/pub/log_f${f}_a$a.txt" 2>&1; echo "fold $f attr $a rc=$?" ) &
  done
done
wait
python -m dplpaper.experiments.portable collect "$OUT/case3_pub_dpl_device.json" "$OUT/pub"
python - <<'PY'
import json, os
import pandas as pd
d = json.load(open(os.path.join(os.environ.get("OUT", "runs_device"), "case3_pub_dpl_device.json")))
t = pd.concat([pd.DataFrame(r["pub"]) for r in d["runs"]])
print(len(d["runs"]), "runs;", t.groupby("method")[["nse", "kge"]].median().round(3).to_string())
print("wall per run (s):", sorted(round(r["provenance"]["wall_time_s"]) for r in d["runs"]))
PY
