"""Fit a classifier on the first half of scikit-learn's digits data set (shipped with it: no download)."""

import argparse
import pickle
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.svm import SVC

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
args = parser.parse_args()

digits = load_digits()
half = len(digits.images) // 2
model = SVC(gamma=0.001).fit(digits.data[:half], digits.target[:half])
runtime.log_metric("train_accuracy", float(model.score(digits.data[:half], digits.target[:half])))
(Path(args.model) / "model.pkl").write_bytes(pickle.dumps(model))
