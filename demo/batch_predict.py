#!/usr/bin/python3
"""The batch job: precomputes predictions for every patient it can and
writes them as JSON Lines in Spark's output shape (part-NNNNN files, then
_SUCCESS).  Every fifth patient is left out, so that misses happen.

    demo/batch_predict.py MODEL.pkl OUT_DIR [--parts N]
"""

import argparse
import json
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import features  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--parts", type=int, default=2)
    args = ap.parse_args()

    with open(args.model, "rb") as f:
        saved = pickle.load(f)

    os.makedirs(args.out, exist_ok=True)
    outs = [open(os.path.join(args.out, "part-%05d" % i), "w")
            for i in range(args.parts)]

    written = 0
    for row in features.rows():
        if row % 5 == 0:
            continue
        pid = features.patient_id(row)
        value = features.answer(saved["model"], saved["name"],
                                features.features(pid))
        outs[row % args.parts].write(
            json.dumps({"key": pid, "value": value}) + "\n")
        written += 1

    for f in outs:
        f.close()

    # written last: readers take the folder only once the job is done
    open(os.path.join(args.out, "_SUCCESS"), "w").close()

    print(f"batch {saved['name']}: {written} predictions in {args.parts} "
          f"part files, {len(features.rows()) - written} patients left out")


if __name__ == "__main__":
    main()
