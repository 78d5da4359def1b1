#!/usr/bin/env python3
# A process strategy plugin (docs/extensions.md): ranks the candidates by name length
# (shortest first; ties by name), err = length * scale. Reads the request on stdin, writes
# [{"json_model", "err"}] on stdout.
import json
import sys

req = json.load(sys.stdin)
scale = req["params"]["scale"]
models = sorted(req["models"], key=lambda m: (len(m["name"]), m["name"]))
if req["params"]["reverse"]:
    models.reverse()
json.dump([{"json_model": m, "err": len(m["name"]) * scale} for m in models], sys.stdout)
