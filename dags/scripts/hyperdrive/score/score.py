"""Score the registered model on the held-out test digits."""

import json
import pickle

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from airflow_provider_amlpipe import runtime

X, y = load_digits(return_X_y=True)
X = X / 16.0
_, X_test, _, y_test = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
with open(runtime.input_path("model") / "model.pkl", "rb") as handle:
    model = pickle.load(handle)
accuracy = float(model.score(X_test, y_test))
(runtime.output_path("scores") / "scores.json").write_text(
    json.dumps({"test_accuracy": accuracy, "test_samples": len(y_test)}) + "\n", encoding="utf-8"
)
runtime.log_metric("test_accuracy", accuracy)
print(f"test accuracy {accuracy:.4f} on {len(y_test)} digits")
