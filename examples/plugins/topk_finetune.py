#!/usr/bin/env python3
"""A process strategy plugin that uses the engine's host API (docs/extensions.md).

Ranks the candidates by their mean recorded fine-tune accuracy on *other* datasets
(host call "history", free), fine-tunes the best k on the task (host call "finetune",
queued and cached by the engine), and answers: the fine-tuned ones first by their
accuracy, then the rest by the history mean, then the models with no history.

The request is one JSON document on stdin; host calls are JSON lines written to fd 3,
each answered by one JSON line on fd 4 ($RANKQL_HOST_FDS = "3 4"); the answer goes to
stdout. Errors: a message on stderr and a non-zero exit.
"""
import json
import os
import sys

req = json.load(sys.stdin)
fds = os.environ.get("RANKQL_HOST_FDS")
if not fds:
    sys.exit("topk_finetune: no host API here (RANKQL_HOST_FDS is not set)")
wfd, rfd = (int(x) for x in fds.split())
to_host = os.fdopen(wfd, "w", buffering=1)
from_host = os.fdopen(rfd, "r")


def call(**request):
    to_host.write(json.dumps(request) + "\n")
    to_host.flush()
    answer = json.loads(from_host.readline())
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error", "host call failed"))
    return answer


k = req["params"]["k"]
train = req["datasets"]["train"][0]["id"]
signal = {}
for m in req["models"]:
    hist = call(call="history", model_id=m["id"])["history"]
    if hist:
        signal[m["id"]] = sum(h["accuracy"] for h in hist) / len(hist)

ordered = sorted(req["models"], key=lambda m: (-signal.get(m["id"], -1.0), m["id"]))
tuned = {}
for m in ordered[:k]:
    try:
        tuned[m["id"]] = call(call="finetune", model_id=m["id"], dataset_id=train)["accuracy"]
    except RuntimeError as e:  # e.g. no recorded run: rank it with the rest
        print("topk_finetune: model %d: %s" % (m["id"], e), file=sys.stderr)

first = sorted((m for m in ordered if m["id"] in tuned), key=lambda m: (-tuned[m["id"]], m["id"]))
rest = [m for m in ordered if m["id"] not in tuned]
answer = [{"model_id": m["id"], "err": 1 - tuned[m["id"]]} for m in first]
answer += [{"model_id": m["id"], "err": 1 - signal[m["id"]] if m["id"] in signal else 1e6}
           for m in rest]
json.dump(answer, sys.stdout)
