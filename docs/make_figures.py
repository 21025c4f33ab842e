"""Regenerate the pictures of docs/explain.md (PNG files under docs/figures/).

    python docs/make_figures.py

Digits (always): a waterfall with image cases, a prototype gallery, an
embedding map, and a screenshot of the HTML report (when a headless Chromium
is installed). CLINC150 (when ``../shared/data/clinc150`` exists beside the
checkout): a waterfall whose bars are labelled with training sentences.
About 20 s on 2 cores. Needs matplotlib (``pip install -e ".[plot]"``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skproto import ProtoClassifier, RBFPrototypeClassifier
from skproto.explain import (
    EmbeddingDisplay,
    ExplanationDisplay,
    PrototypeGalleryDisplay,
    make_report,
)

HERE = Path(__file__).resolve().parent
OUT = HERE / "figures"
CLINC = HERE.parents[1] / "shared" / "data" / "clinc150"


def dark_on_light(image):
    return 16.0 - image


def digits_figures() -> None:
    d = load_digits()
    X_tr, X_te, y_tr, y_te, im_tr, im_te = train_test_split(
        d.data / 16.0, d.target, d.images, test_size=0.3, stratify=d.target, random_state=0
    )
    clf = ProtoClassifier(random_state=0).fit(X_tr, y_tr)
    w = ExplanationDisplay.from_estimator(
        clf, X_te, sample=3, n_prototypes=4, cases=im_tr, renderer=dark_on_light
    )
    w.figure_.savefig(OUT / "digits_waterfall.png", dpi=90, bbox_inches="tight")
    g = PrototypeGalleryDisplay.from_estimator(
        clf, X_tr, y_tr, cases=im_tr, classes=[3, 8], n_neighbors=3, renderer=dark_on_light
    )
    g.figure_.savefig(OUT / "digits_gallery.png", dpi=80, bbox_inches="tight")
    e = EmbeddingDisplay.from_estimator(clf, X_tr, y_tr)
    e.figure_.savefig(OUT / "digits_embedding.png", dpi=80, bbox_inches="tight")
    cbc = RBFPrototypeClassifier(random_state=0).fit(X_tr, y_tr)
    p = ExplanationDisplay.from_estimator(
        cbc,
        X_te,
        sample=3,
        n_prototypes=2,
        cases=im_tr,
        X_train=X_tr,
        y_train=y_tr,
        renderer=dark_on_light,
    )
    p.figure_.savefig(OUT / "digits_cbc_waterfall.png", dpi=90, bbox_inches="tight")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        print("no chromium on PATH: skipping digits_report.png (the report's screenshot)")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            page = Path(tmp) / "report.html"
            html = make_report(
                clf,
                X_te[:20],
                y_te[:20],
                cases=im_tr,
                query_cases=im_te[:20],
                X_train=X_tr,
                y_train=y_tr,
                renderer=dark_on_light,
                title="Digits: ProtoClassifier() explained",
            )
            # open the first query so that the picture shows a waterfall
            page.write_text(
                html.replace("<details class='query'", "<details open class='query'", 1)
            )
            subprocess.run(
                [
                    browser,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    f"--user-data-dir={tmp}/profile",
                    "--window-size=1100,1250",
                    f"--screenshot={OUT / 'digits_report.png'}",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )


def clinc_figure() -> None:
    if not (CLINC / "minilm_l6_v2.npz").is_file():
        print(f"no CLINC150 under {CLINC}: skipping its figure")
        return
    with np.load(CLINC / "minilm_l6_v2.npz") as z:
        X_tr, y_tr, X_te = z["X_train"], z["y_train"], z["X_test"]
    texts = [t for t, _ in json.loads((CLINC / "data_full.json").read_text())["train"]]
    clf = ProtoClassifier(random_state=0).fit(X_tr, y_tr)
    w = ExplanationDisplay.from_estimator(clf, X_te, sample=0, n_prototypes=3, cases=texts)
    w.figure_.savefig(OUT / "clinc150_waterfall.png", dpi=90, bbox_inches="tight")


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    before = {p.name: p.stat().st_mtime_ns for p in OUT.glob("*.png")}
    digits_figures()
    clinc_figure()
    # only what this run drew (a skipped figure keeps its old file)
    wrote = [p.name for p in OUT.glob("*.png") if before.get(p.name) != p.stat().st_mtime_ns]
    print("wrote", sorted(wrote))
