#!/usr/bin/python3
"""Peer benchmark, torch side: eager CPU inference time of torchvision's ResNet-50-FPN two-stage
detectors on one 480x640 image, plus ONNX export the way torchvision's test/test_onnx.py does it.

    /usr/bin/python3 bench_torchvision.py --out .data/peer [--threads 2] [--runs 3]
        [--models maskrcnn,keypointrcnn,fasterrcnn] [--weights default,calibrated] [--export maskrcnn,keypointrcnn]
    /usr/bin/python3 bench_torchvision.py --perf-case .data/perf/maskrcnn_r50fpn [--perf-case DIR ...]

Models are built exactly as torchvision's *_resnet50_fpn builders build them when COCO weights are
requested (resnet50 with FrozenBatchNorm2d, _resnet_fpn_extractor(trainable_layers=3), default heads,
min_size 800 / max_size 1333), but with random weights:
  default    : torchvision's default init (torch.manual_seed(seed)) + random FrozenBN statistics;
               activations explode and the RPN keeps only a handful of proposals (so the heads do ~no work)
  calibrated : weights drawn like the parity fixtures (tools/parity/gen_fixtures.py) so the RPN
               yields the full 1000 proposals and ~100 detections reach the mask / keypoint heads
Timing: torch.set_num_threads(N), torch.no_grad(), 1 warm-up run, median of --runs runs.
Writes OUT/torch_bench.json, OUT/input_480x640.f32 (raw float32 CHW input) and, for --export,
OUT/<model>_r50fpn_tv.onnx with OUT/<model>_r50fpn_torch_out.json (eager outputs on that input).

--perf-case DIR (repeatable; nothing is timed; one thread): DIR is a perf case written by
`tools/parity/gen_fixtures.py --set perf` (case.json, weights.safetensors, image_0.png,
reference.safetensors). The model is rebuilt from case.json, loaded from weights.safetensors and exported
the same way to DIR/peer.onnx; DIR/input.f32 gets the raw float32 CHW input (image_0.png / 255) and
DIR/peer.json describes both. tools/peer/make_perf_cases.sh runs the whole chain.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models.detection import FasterRCNN, KeypointRCNN, MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.getcwd()
sys.path.insert(0, os.path.join(HERE, "..", "parity"))
import gen_fixtures as g  # noqa: E402

DEFAULT_THREADS = torch.get_num_threads()  # before anything changes it
ONNX_OPSET = 11


def build(kind, mode, seed, image):
    torch.manual_seed(seed)
    backbone = _resnet_fpn_extractor(torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d), 3)
    if kind == "maskrcnn":
        model = MaskRCNN(backbone, num_classes=91)
    elif kind == "keypointrcnn":
        model = KeypointRCNN(backbone, num_classes=2, num_keypoints=17)
    else:
        model = FasterRCNN(backbone, num_classes=91)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if mode == "default":
            for m in model.modules():
                if isinstance(m, FrozenBatchNorm2d):
                    c = m.weight.numel()
                    m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(c, generator=gen) * 0.1)
                    m.running_mean.copy_(torch.randn(c, generator=gen) * 0.1)
                    m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
        else:
            g.randomize_(model, gen, [1.0, 1.0, 1.0, 1.0], 0.45)
            # ~100 detections survive for maskrcnn/fasterrcnn; keypointrcnn has a single class
            cand = {"maskrcnn": 300, "fasterrcnn": 300, "keypointrcnn": 150}[kind]
            cal = g.OneShotCalibration(model, {"candidates": cand, "rpn_size_bias": []})
            model([image.clone()])
            cal.remove()
    return model


def counts(model, image):
    seen = {}
    orig = model.rpn.filter_proposals

    def fp(*a, **k):
        b, s = orig(*a, **k)
        seen["proposals"] = int(b[0].shape[0])
        return b, s

    model.rpn.filter_proposals = fp
    with torch.no_grad():
        out = model([image.clone()])
    del model.rpn.filter_proposals
    return seen["proposals"], int(out[0]["boxes"].shape[0]), out


def time_model(model, image, runs):
    with torch.no_grad():
        t0 = time.perf_counter()
        model([image.clone()])
        warm = time.perf_counter() - t0
        ts = []
        for _ in range(runs):
            t0 = time.perf_counter()
            model([image.clone()])
            ts.append(time.perf_counter() - t0)
    return warm, ts


def export_onnx(kind, model, image, path):
    """torch.onnx.export as in torchvision test/test_onnx.py (ONNXExporterTester.run_model / test_mask_rcnn,
    test_keypoint_rcnn): opset 11, one image [3,H,W] in, the detector's outputs out.
    Returns (output names, export seconds)."""
    if kind == "maskrcnn":
        names = ["boxes", "labels", "scores", "masks"]
        dyn = {"images_tensors": [0, 1, 2], "boxes": [0, 1], "labels": [0], "scores": [0], "masks": [0, 1, 2]}
    elif kind == "keypointrcnn":
        names = ["outputs1", "outputs2", "outputs3", "outputs4"]
        dyn = {"images_tensors": [0, 1, 2]}
    else:
        names = ["outputs"]
        dyn = {"images_tensors": [0, 1, 2]}
    t0 = time.perf_counter()
    torch.onnx.export(model, ([image.clone()],), path, do_constant_folding=True, opset_version=ONNX_OPSET,
                      input_names=["images_tensors"], output_names=names, dynamic_axes=dyn)
    return names, time.perf_counter() - t0


def export(kind, model, image, out_dir):
    path = os.path.join(out_dir, f"{kind}_r50fpn_tv.onnx")
    names, t_export = export_onnx(kind, model, image, path)
    with torch.no_grad():
        out = model([image.clone()])[0]
    ref = {k: v.tolist() for k, v in out.items() if k in ("boxes", "labels", "scores", "keypoints_scores")}
    if "keypoints" in out:
        ref["keypoints"] = out["keypoints"].tolist()
    if "masks" in out:
        m = out["masks"]
        ref["masks_shape"] = list(m.shape)
        ref["masks_sum"] = float(m.double().sum())
        ref["masks_pos"] = int((m > 0.5).sum())
    ref["output_names"] = names
    with open(os.path.join(out_dir, f"{kind}_r50fpn_torch_out.json"), "w") as f:
        json.dump(ref, f)
    return path, t_export


def export_perf_case(case_dir):
    """Rebuild a perf case's model from case.json + weights.safetensors alone, write input.f32, export
    peer.onnx and peer.json, and compare one eager run with the case's reference detections."""
    with open(os.path.join(case_dir, "case.json")) as f:
        case = json.load(f)
    m = case["model"]
    if len(case["images"]) != 1:
        raise SystemExit(f"{case_dir}: a perf case has exactly one image")
    model = g.build_model(m)
    w, _ = g.read_safetensors(os.path.join(case_dir, case["weights"]["file"]))
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
    model.eval()
    im = case["images"][0]
    image = g.to_input(np.asarray(Image.open(os.path.join(case_dir, im["file"])).convert("RGB")))
    shape = [3, im["height"], im["width"]]
    assert list(image.shape) == shape, (list(image.shape), shape)
    image.numpy().astype("<f4").tofile(os.path.join(case_dir, "input.f32"))

    # the model that gets exported must reproduce the case's reference outputs bit for bit (one thread,
    # as gen_fixtures.py made them)
    ref, _ = g.read_safetensors(os.path.join(case_dir, case["reference"]["file"]))
    with torch.no_grad():
        out = model([image.clone()])[0]
    bad = [k for k in ("boxes", "scores", "labels", "keypoints", "keypoints_scores")
           if k in out and not np.array_equal(out[k].numpy(), ref[f"det.{k}.0"])]
    if "masks" in out and not np.array_equal((out["masks"].numpy() > 0.5).astype(np.uint8), ref["det.masks.0"]):
        bad.append("masks")
    if bad:
        raise SystemExit(f"{case_dir}: eager run of the loaded weights differs from reference.safetensors in {bad}")
    check = {"detections": int(out["scores"].shape[0]), "det_outputs_bit_exact": True}

    path = os.path.join(case_dir, "peer.onnx")
    names, t_export = export_onnx(m["kind"], model, image, path)
    info = {
        "onnx": "peer.onnx",
        "case": case["name"],
        "exported_by": "tools/peer/bench_torchvision.py --perf-case (torch.onnx.export as torchvision "
                       "test/test_onnx.py does it)",
        "opset": ONNX_OPSET,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "input": {"name": "images_tensors", "file": "input.f32", "dtype": "float32", "layout": "CHW",
                  "shape": shape, "from": f"{im['file']} / 255 (RGB)"},
        "output_names": names,
        "output_order": {"maskrcnn": "boxes, labels, scores, masks (pasted probabilities [D,1,H,W])",
                         "keypointrcnn": "boxes, labels, scores, keypoints, keypoints_scores",
                         "fasterrcnn": "boxes, labels, scores"}[m["kind"]],
        "onnx_bytes": os.path.getsize(path),
        "eager_vs_reference": check,
    }
    with open(os.path.join(case_dir, "peer.json"), "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")
    return dict(info, export_s=round(t_export, 1))  # the time is printed, not written: peer.json stays reproducible


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, ".data", "peer"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--models", default="maskrcnn,keypointrcnn,fasterrcnn")
    ap.add_argument("--weights", default="calibrated,default")
    ap.add_argument("--export", default="maskrcnn,keypointrcnn")
    ap.add_argument("--perf-case", action="append", metavar="DIR",
                    help="export a perf case (gen_fixtures.py --set perf) to DIR/peer.onnx + DIR/input.f32 only")
    a = ap.parse_args()
    if a.perf_case:
        torch.set_num_threads(1)
        for d in a.perf_case:
            info = export_perf_case(d)
            print(json.dumps({k: info[k] for k in ("case", "onnx_bytes", "export_s", "eager_vs_reference")}),
                  flush=True)
        return
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    arr = g.make_image(("coffee", (0.0556, 0.0, 0.9444, 1.0), 480, 640))
    image = g.to_input(arr)
    image.numpy().astype("<f4").tofile(os.path.join(a.out, "input_480x640.f32"))
    res = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "default_num_threads": DEFAULT_THREADS, "num_threads": torch.get_num_threads(),
           "num_interop_threads": torch.get_num_interop_threads(), "input": [3, 480, 640], "runs": []}
    exports = [x for x in a.export.split(",") if x]
    for mode in a.weights.split(","):
        for kind in a.models.split(","):
            model = build(kind, mode, a.seed, image)
            props, dets, _ = counts(model, image)
            warm, ts = time_model(model, image, a.runs)
            row = {"model": f"{kind}_resnet50_fpn", "weights": mode, "proposals": props, "detections": dets,
                   "warmup_s": round(warm, 3), "runs_s": [round(t, 3) for t in ts],
                   "median_s": round(statistics.median(ts), 3)}
            if mode == "calibrated" and kind in exports:
                path, t_exp = export(kind, model, image, a.out)
                row["onnx"] = os.path.relpath(path, ROOT)
                row["onnx_export_s"] = round(t_exp, 1)
                row["onnx_bytes"] = os.path.getsize(path)
            res["runs"].append(row)
            print(json.dumps(row), flush=True)
            del model
    with open(os.path.join(a.out, "torch_bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"default torch.get_num_threads() = {DEFAULT_THREADS}; timed with {res['num_threads']}")


if __name__ == "__main__":
    main()
