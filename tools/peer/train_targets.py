#!/usr/bin/python3
"""The training targets of bench_train_torchvision.py, for rcnn-node's side of the `train` benchmark.

    /usr/bin/python3 train_targets.py PERF_DIR      # writes PERF_DIR/<case>/train_targets.safetensors

Same call as bench_train_torchvision.run_one: gen_train_fixtures.make_targets({"objects": GT_OBJECTS},
480, 640, kind, num_classes, K, seed 7) on the perf cases' photo size, stored under the training fixtures'
names (target.boxes.0, target.labels.0, target.masks.0 | target.keypoints.0).
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "parity"))

CASES = {"maskrcnn_r50fpn": ("maskrcnn", 91, 0), "keypointrcnn_r50fpn": ("keypointrcnn", 2, 17)}


def main():
    import bench_train_torchvision as btt
    import gen_fixtures as g
    import gen_train_fixtures as gtf

    out = sys.argv[1] if len(sys.argv) > 1 else ".data/perf"
    for case, (kind, num_classes, k) in CASES.items():
        if not os.path.isdir(os.path.join(out, case)):
            print(f"{case}: no case directory in {out}, skipped")
            continue
        t = gtf.make_targets({"objects": btt.GT_OBJECTS}, 480, 640, kind, num_classes, k, btt.SEED)
        path = os.path.join(out, case, "train_targets.safetensors")
        g.write_safetensors(path, {f"target.{name}.0": v for name, v in t.items()}, {"objects": ",".join(btt.GT_OBJECTS)})
        print(path, {name: list(v.shape) for name, v in t.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
