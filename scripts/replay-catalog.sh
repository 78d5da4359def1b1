#!/usr/bin/env bash
# Prints a rankql catalogue for a file of recorded fine-tune runs (docs/runners.md "replay"):
# one REGISTER MODEL per model_identifier (runner replay) and one REGISTER DATASET per
# train_dataset_name (format replay), named as in the file (with an optional prefix), the
# records path made absolute (rankqld and its workers read it). Modality: text for the
# HuggingFaceText framework, image otherwise.
#
#   scripts/replay-catalog.sh [--prefix P] RECORDS.csv > catalog.rql
#   rankql -f catalog.rql
set -euo pipefail
usage() { echo "usage: $0 [--prefix NAME-PREFIX] RECORDS.csv > catalog.rql" >&2; exit 2; }
prefix=
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) [ $# -ge 2 ] || usage; prefix=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
  esac
done
[ $# -eq 1 ] || usage
[ -r "$1" ] || { echo "$0: cannot read $1" >&2; exit 1; }
exec python3 - "$1" "$prefix" <<'EOF'
import csv, os, sys

path, prefix = os.path.abspath(sys.argv[1]), sys.argv[2]

def q(s):  # a rankql string literal: backslash escapes for \ and the quote
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")

models, datasets = {}, {}
with open(path, newline="", encoding="utf-8-sig") as f:
    rows = csv.DictReader(f)
    need = {"model_identifier", "train_dataset_name", "test_accuracy", "elapsed_time"}
    missing = need - set(rows.fieldnames or [])
    if missing:
        sys.exit("%s: the header has no column %s" % (path, ", ".join(sorted(missing))))
    for r in rows:
        modality = "text" if r.get("framework") == "HuggingFaceText" else "image"
        models.setdefault(r["model_identifier"], modality)
        datasets.setdefault(r["train_dataset_name"], modality)

print("-- replay catalogue of %s: %d models, %d datasets (scripts/replay-catalog.sh)"
      % (path, len(models), len(datasets)))
for m, modality in sorted(models.items()):
    print("REGISTER MODEL \"%s%s\" (runner, modality, spec) VALUES ('replay', '%s', "
          "{records: '%s', model_identifier: '%s'});" % (q(prefix), q(m), modality, q(path), q(m)))
for d, modality in sorted(datasets.items()):
    print("REGISTER DATASET \"%s%s\" (format, modality, spec) VALUES ('replay', '%s', "
          "{records: '%s', train_dataset_name: '%s'});" % (q(prefix), q(d), modality, q(path), q(d)))
EOF
