"""Explained digit predictions as one self-contained HTML page, with images.

Fits ``ProtoClassifier()`` on scikit-learn's digits (8x8 images) and writes
``digits_report.html``: for 20 test digits, the prediction and, for the
predicted class and the runner-up, the training *images* whose contributions
add up to each score; plus a gallery of every class's prototype images with
their nearest training images and purity. Images are inline PNGs: the file
opens anywhere, offline. A few seconds.

    python examples/digits_report.py [--out digits_report.html]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skproto import ProtoClassifier
from skproto.explain import make_report


def dark_on_light(image):
    """Digits have ink = 16: show ink dark on a light background."""
    return 16.0 - image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("digits_report.html"))
    args = ap.parse_args()
    digits = load_digits()
    X, y, images = digits.data / 16.0, digits.target, digits.images
    X_train, X_test, y_train, y_test, img_train, img_test = train_test_split(
        X, y, images, test_size=0.3, stratify=y, random_state=0
    )
    clf = ProtoClassifier(random_state=0).fit(X_train, y_train)
    print(f"ProtoClassifier() test accuracy {clf.score(X_test, y_test):.4f}")
    start = time.perf_counter()
    make_report(
        clf,
        X_test[:20],
        y_test[:20],
        cases=img_train,
        query_cases=img_test[:20],
        X_train=X_train,
        y_train=y_train,
        renderer=dark_on_light,
        title="Digits: ProtoClassifier() explained",
        path=args.out,
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB) in "
        f"{time.perf_counter() - start:.2f} s"
    )


if __name__ == "__main__":
    main()
