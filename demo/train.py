#!/usr/bin/python3
"""Trains the demo model on a data set that ships inside Debian's
python3-sklearn (no download): logistic regression on the Wisconsin breast
cancer data, predicting the probability that a tumour is benign.

    demo/train.py OUT.pkl [--c C] [--name NAME]
"""

import argparse
import pickle

from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--c", type=float, default=1.0,
                    help="inverse regularisation strength")
    ap.add_argument("--name", default="v1", help="model name in answers")
    args = ap.parse_args()

    data = load_breast_cancer()
    model = make_pipeline(StandardScaler(),
                          LogisticRegression(C=args.c, max_iter=1000))
    accuracy = cross_val_score(model, data.data, data.target, cv=5).mean()
    model.fit(data.data, data.target)

    with open(args.out, "wb") as f:
        pickle.dump({"model": model, "name": args.name}, f)

    print(f"trained {args.name}: logistic regression, C={args.c}, "
          f"{len(data.target)} patients, 5-fold accuracy {accuracy:.3f}")


if __name__ == "__main__":
    main()
