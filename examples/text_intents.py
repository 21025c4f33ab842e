"""From raw texts to explained intents: one scikit-learn pipeline, offline.

``make_pipeline(SentenceEncoder(), ProtoClassifier())`` is fitted on
CLINC150's raw training queries (the sentence encoder is the packaged
all-MiniLM-L6-v2, loaded offline). Then: test accuracy, out-of-scope
detection (AUROC of ``score_samples`` between in-scope test queries and the
out-of-scope ones), and three predictions explained by the training
*sentences* of their prototypes, which the classifier learned from the
pipeline itself (no index to keep). Encodings are cached under
``--cache`` (default ``.skproto-cache``), so a second run skips encoding.

    pip install -e ".[text]"
    python examples/text_intents.py

Needs ``../shared/data/clinc150/data_full.json`` beside the checkout (or
``--data FILE``); without it the example says so and exits. First run: a few
minutes on 2 cores (encoding 20,500 texts, fitting).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline

from skproto import ProtoClassifier
from skproto.encoders import SentenceEncoder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/clinc150/data_full.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cache", type=Path, default=Path(".skproto-cache"))
    args = ap.parse_args()
    if not args.data.is_file():
        print(f"CLINC150 not found at {args.data}; skipping the example.")
        return
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        print("This example needs the text extra: pip install -e '.[text]'; skipping.")
        return
    data = json.loads(args.data.read_text())
    train_texts, y_train = map(list, zip(*data["train"]))
    test_texts, y_test = map(list, zip(*data["test"]))
    oos_texts = [text for text, _ in data["oos_test"]]

    start = time.perf_counter()
    pipe = make_pipeline(SentenceEncoder(memory=args.cache), ProtoClassifier(random_state=0))
    pipe.fit(train_texts, y_train)
    print(f"fitted on {len(train_texts)} raw texts in {time.perf_counter() - start:.0f} s")
    print(f"test accuracy {pipe.score(test_texts, y_test):.4f}")
    inside, outside = pipe.score_samples(test_texts), pipe.score_samples(oos_texts)
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    auroc = roc_auc_score(labels, np.r_[inside, outside])
    print(f"out-of-scope detection: AUROC {auroc:.3f} (score_samples)")

    queries = [
        "can you tell me how to say hello in german",
        "my card got eaten by the atm",
        "what's the weather going to be like tomorrow",
    ]
    encoder, clf = pipe[0], pipe[-1]
    ex = clf.explain(encoder.transform(queries), n_prototypes=2)
    for i, query in enumerate(queries):
        print(f"\n{query!r} -> {ex.explained[i]} (margin {ex.margin[i]:.3g})")
        for r in range(2):
            c = int(np.searchsorted(ex.classes, ex.explained[i]))
            print(f"  {ex.contribution[i, r, c]:+7.3f}  looks like {ex.cases[i, r]!r}")


if __name__ == "__main__":
    main()
