"""HyperDrive trial: a small neural network (scikit-learn's MLPClassifier) on the bundled digits.

AML's notebook trained a TensorFlow DNN on MNIST; the digits data ships with scikit-learn, so
nothing is downloaded. The sweep passes the hyperparameters as ``--name value``; the validation
accuracy is logged once per epoch, which is what the Bandit policy judges.
"""

import argparse
import pickle
import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--batch-size", type=int, required=True)
parser.add_argument("--first-layer-neurons", type=int, required=True)
parser.add_argument("--second-layer-neurons", type=int, required=True)
parser.add_argument("--learning-rate", type=float, required=True)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--model", required=True)
args = parser.parse_args()

# The test split (20 %) is held out for the score step; validation comes from the rest.
X, y = load_digits(return_X_y=True)
X = X / 16.0
X_rest, _, y_rest, _ = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.25, random_state=0, stratify=y_rest)

model = MLPClassifier(
    hidden_layer_sizes=(args.first_layer_neurons, args.second_layer_neurons),
    batch_size=args.batch_size,
    learning_rate_init=args.learning_rate,
    max_iter=1,
    random_state=0,
)
classes = sorted(set(y))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for epoch in range(1, args.epochs + 1):
        model.partial_fit(X_train, y_train, classes=classes)
        accuracy = float(model.score(X_val, y_val))
        runtime.log_metric("validation_acc", accuracy, step=epoch)
        print(f"epoch {epoch}: validation accuracy {accuracy:.4f}")

with open(f"{args.model}/model.pkl", "wb") as handle:
    pickle.dump(model, handle)
