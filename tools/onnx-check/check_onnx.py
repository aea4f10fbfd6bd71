#!/usr/bin/python3
"""Runs the ONNX project's own checks on model files and reports every graph and subgraph output.

    check_onnx.py MODEL.onnx...        (Debian python3-onnx; one JSON object per line on stdout)

For each model: onnx.checker.check_model(full_check=True) (which includes strict shape inference),
then onnx.shape_inference.infer_shapes(check_type=True, strict_mode=True) once more to keep the
inferred model, and a walk over the main graph and every If/Loop/Scan body listing each output's
element type and declared shape. The caller (test/checker.test.ts) judges the result; this script
only fails on its own usage errors.
"""
import json
import sys

import onnx
import onnx.checker
import onnx.shape_inference


def dims_of(value_info):
    t = value_info.type
    if not t.HasField("tensor_type"):
        return None, None
    tt = t.tensor_type
    if not tt.HasField("shape"):
        return tt.elem_type, None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.HasField("dim_param"):
            dims.append(d.dim_param)
        else:
            dims.append(None)
    return tt.elem_type, dims


def walk(graph, path, out):
    for o in graph.output:
        elem, dims = dims_of(o)
        out.append({"graph": path, "name": o.name, "elem_type": elem, "dims": dims})
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                walk(a.g, path + [node.name + "." + a.name], out)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for i, g in enumerate(a.graphs):
                    walk(g, path + ["%s.%s[%d]" % (node.name, a.name, i)], out)


def check(path):
    report = {"file": path, "onnx": onnx.__version__, "checker": None, "inference": None}
    model = onnx.load(path)
    try:
        onnx.checker.check_model(model, full_check=True)
        report["checker"] = "ok"
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        report["checker"] = "%s: %s" % (type(e).__name__, e)
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        report["inference"] = "ok"
    except Exception as e:  # noqa: BLE001
        report["inference"] = "%s: %s" % (type(e).__name__, e)
    outputs = []
    walk(model.graph, [], outputs)
    report["outputs"] = outputs
    report["inputs"] = [{"name": i.name, "elem_type": dims_of(i)[0], "dims": dims_of(i)[1]} for i in model.graph.input]
    return report


def main(argv):
    if len(argv) < 2:
        sys.stderr.write(__doc__)
        return 2
    for path in argv[1:]:
        sys.stdout.write(json.dumps(check(path)) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
