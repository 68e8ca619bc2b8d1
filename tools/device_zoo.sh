#!/usr/bin/env bash
# Train zoo recipes on a lent GPU machine for a time box each, ship them, and bring them back:
# the whole GPU session in one call of the device tool's `run`.
#
# Here, first (the Omniglot zips must travel with the working tree: .data/ is git-ignored, 14 MB; delete it after):
#   mkdir -p .data && cp ../shared/data/omniglot/images_*.zip .data/
# Then run, with carry [".data"] (add "runs/zoo/NAME" to continue a CPU checkpoint there) and timeout_s 590:
#   bash tools/device_zoo.sh 300 maml-20w1s maml-dropout-20w1s metanet-5w1s
# Every recipe named trains at once on the one GPU for SECONDS of training (`zoo train --seconds`; validation
# and the export's 600 test tasks come on top), and comes back under $OUT, at most 3 recipes (the device tool
# returns 8 files): NAME.pt goes to mlscratch/zoo/weights/, NAME-checkpoint.pt to runs/zoo/NAME/checkpoint.pt,
# so `zoo train NAME` continues it anywhere. Tried here with: DEVICE=cpu PYTHON=.venv/bin/python.
set -uo pipefail
if [ $# -lt 2 ] || [ $# -gt 4 ]; then
    echo "usage: bash tools/device_zoo.sh SECONDS NAME [NAME [NAME]]" >&2
    exit 2
fi
seconds=$1
shift
out=${OUT:-runs/device-out}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 MLSCRATCH_DATA=${MLSCRATCH_DATA:-$PWD/.data}
"$python" -c "import torch; print('torch', torch.__version__, 'cuda:', torch.cuda.is_available())"
for name in "$@"; do
    (
        start=$(date +%s)
        "$python" -m mlscratch zoo train "$name" --seconds "$seconds" --device "${DEVICE:-cuda}" --no-progress
        echo "$name: $(($(date +%s) - start)) s in all"
        cp "mlscratch/zoo/weights/$name.pt" "$out/" && cp "runs/zoo/$name/checkpoint.pt" "$out/$name-checkpoint.pt"
    ) > "$out/$name.log" 2>&1 &
done
wait
for name in "$@"; do
    echo "=== $name"
    cat "$out/$name.log"
    rm "$out/$name.log"
done | tee "$out/log.txt"
ls -la "$out"
