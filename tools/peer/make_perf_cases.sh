#!/bin/sh
# Rebuild the perf cases from scratch: torchvision's Mask R-CNN and Keypoint R-CNN R50-FPN with the
# "calibrated" random weights, one 480 x 640 photo, in the parity-fixture format, plus the same models
# exported to ONNX (the peer), and check that the peer reproduces the torchvision reference.
#
#   make_perf_cases.sh [OUT]          # OUT defaults to ./.data/perf; never commit it (hundreds of MB)
#
# Writes OUT/<case>/ for case in maskrcnn_r50fpn, keypointrcnn_r50fpn:
#   case.json, weights.safetensors, image_0.png, reference.safetensors   (gen_fixtures.py --set perf)
#   peer.onnx, peer.json, input.f32                                        (bench_torchvision.py --perf-case)
# then runs `time_peer.cjs OUT/<case> --runs 0 --check` on each (exit 1 if the check fails) and keeps the
# result in OUT/<case>/peer_check.json. Time one case with:
#   node time_peer.cjs OUT/maskrcnn_r50fpn --runs 3 --threads 2
#
# Needs Debian's python3-torchvision python3-skimage (torch 1.13 / torchvision 0.14.1, the sample photos;
# run with /usr/bin/python3 or $PYTHON), Node >= 18 with npm, and onnxruntime-node: taken from
# $ORT_NODE_DIR (default /tmp/peer/node_modules) and installed there from the npm registry if missing.
# About 3 minutes on 2 cores; peak memory about 3 GB.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-.data/perf}
PY=${PYTHON:-/usr/bin/python3}
ORT_NODE_DIR=${ORT_NODE_DIR:-/tmp/peer/node_modules}
ORT_VERSION=${ORT_VERSION:-1.30.0}
CASES="maskrcnn_r50fpn keypointrcnn_r50fpn"
export ORT_NODE_DIR

"$PY" -c 'import torch, torchvision, skimage' 2>/dev/null || {
  echo "make_perf_cases.sh: $PY lacks torch/torchvision/skimage: apt-get install python3-torchvision python3-skimage" >&2
  exit 1
}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for c in $CASES; do rm -rf "${OUT:?}/$c"; done

# 1. cases in the parity-fixture format (one thread; verified by a rebuild from case.json)
"$PY" "$HERE/../parity/gen_fixtures.py" --set perf --out "$OUT"

# 2. the same weights exported to ONNX (opset 11, as torchvision's test_onnx.py) + raw float32 input
set --
for c in $CASES; do set -- "$@" --perf-case "$OUT/$c"; done
"$PY" "$HERE/bench_torchvision.py" "$@" 2>"$OUT/export.log" || { cat "$OUT/export.log" >&2; exit 1; }

# 3. onnxruntime-node (CPU only; its install script would fetch CUDA providers from outside npm)
if [ ! -f "$ORT_NODE_DIR/onnxruntime-node/package.json" ]; then
  prefix=$(dirname "$ORT_NODE_DIR")
  [ "$(basename "$ORT_NODE_DIR")" = node_modules ] || {
    echo "make_perf_cases.sh: ORT_NODE_DIR must end in node_modules to install into it" >&2
    exit 1
  }
  mkdir -p "$prefix"
  [ -f "$prefix/package.json" ] || (cd "$prefix" && npm init -y >/dev/null)
  (cd "$prefix" && ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
    npm install --no-audit --no-fund "onnxruntime-node@$ORT_VERSION" >/dev/null)
fi

# 4. the peer must reproduce reference det.boxes / det.scores (1e-3) and det.labels on the same input
for c in $CASES; do
  ok=0
  node "$HERE/time_peer.cjs" "$OUT/$c" --runs 0 --check >"$OUT/$c/peer_check.json" || ok=$?
  cat "$OUT/$c/peer_check.json"
  [ "$ok" = 0 ] || { echo "make_perf_cases.sh: $c: peer.onnx does not reproduce the reference (exit $ok)" >&2; exit 1; }
done
du -sh "$OUT"/maskrcnn_r50fpn "$OUT"/keypointrcnn_r50fpn
