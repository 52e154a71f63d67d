"""class_weight on imbalanced data: balanced accuracy and minority-class recall on held-out
rows of make_classification(weights=[0.95, 0.05]), without class weights and with
class_weight="balanced", mean over seeds.

    python bench/class_weight.py [--seeds 0 1 2]

Each seed draws its own data (4,000 rows, 20 features, half held out, stratified) and
network; the fits are fastmlp's MLPClassifier (hidden (32,), max_iter=100, solvers
adam and rprop) and Network([20, 32, 2], 20 epochs). Prints a Markdown table.
"""
import argparse
import warnings

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, Network

MODELS = {
    "MLPClassifier adam": lambda seed, cw: MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=100, random_state=seed, class_weight=cw),
    "MLPClassifier rprop": lambda seed, cw: MLPClassifier(
        hidden_layer_sizes=(32,), solver="rprop", max_iter=100, random_state=seed,
        class_weight=cw),
    "Network sgd": lambda seed, cw: Network([20, 32, 2], epochs=20, random_state=seed,
                                            class_weight=cw),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    scores = {}
    for seed in args.seeds:
        X, y = make_classification(n_samples=4000, n_features=20, weights=[0.95, 0.05],
                                   flip_y=0.01, random_state=seed)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.5, stratify=y, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        for name, make in MODELS.items():
            for cw in (None, "balanced"):
                predicted = make(seed, cw).fit(X_train, y_train).predict(X_test)
                scores.setdefault((name, cw), []).append(
                    (balanced_accuracy_score(y_test, predicted),
                     recall_score(y_test, predicted)))
    print(f"| model | class_weight | balanced accuracy | minority recall |")
    print("|---|---|---:|---:|")
    for (name, cw), values in scores.items():
        bal, rec = np.mean(values, axis=0)
        print(f"| {name} | {cw} | {bal:.3f} | {rec:.3f} |")


if __name__ == "__main__":
    main()
