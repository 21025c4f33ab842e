"""Datasets of the benchmarks: CLINC150 embeddings, scikit-learn digits, synthetic blobs.

CLINC150 (frozen all-MiniLM-L6-v2 sentence embeddings, 150 in-scope intents
plus out-of-scope queries) is read from an ``.npz`` file with ``X_train``,
``y_train``, ``X_val``, ``y_val``, ``X_test``, ``y_test``, ``X_oos_val`` and
``X_oos_test``. Its path is, by priority: the ``--data`` argument, the
environment variable ``SKPROTO_CLINC150_NPZ``, then
``<repo>/../shared/data/clinc150/minilm_l6_v2.npz``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .paths import REPO
from .report import log

CLINC_ENV_VAR = "SKPROTO_CLINC150_NPZ"
REPO_CLINC_PATH = REPO.parent / "shared" / "data" / "clinc150" / "minilm_l6_v2.npz"
SPLIT_KEYS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def default_clinc_path() -> Path:
    """``$SKPROTO_CLINC150_NPZ`` if set, else ``<repo>/../shared/data/clinc150/minilm_l6_v2.npz``.

    (``--data`` on the command line takes precedence over both.)
    """
    env = os.environ.get(CLINC_ENV_VAR)
    return Path(env) if env else REPO_CLINC_PATH


def add_data_argument(ap: argparse.ArgumentParser) -> None:
    """The ``--data`` option (CLINC150 ``.npz``) of every script."""
    default = default_clinc_path()
    ap.add_argument(
        "--data",
        type=Path,
        default=default,
        help=f"CLINC150 embeddings .npz (default: ${CLINC_ENV_VAR} if set, else "
        f"<repo>/../shared/data/clinc150/minilm_l6_v2.npz; here: {default})",
    )


def benchmark_parser(doc: str, stem: str) -> argparse.ArgumentParser:
    """The argument parser every script starts from: ``--data`` and ``--out-dir``."""
    from .paths import DEFAULT_OUT

    ap = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_data_argument(ap)
    ap.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT,
        help=f"where {stem}.md / {stem}.json go (default: benchmarks/results)",
    )
    return ap


def add_threads_and_note(ap: argparse.ArgumentParser) -> None:
    """``--threads`` (torch / BLAS threads, default 1) and ``--note`` (free text)."""
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch / BLAS threads for every model (0: library defaults; default 1)",
    )
    ap.add_argument("--note", default="", help="free text recorded in the report header")


def load_clinc(path: Path, *, announce_missing: bool = True) -> dict | None:
    """Every array of the CLINC150 file, or None (with a message) if it is missing."""
    if not path.is_file():
        if announce_missing:
            msg = f"skipping CLINC150 part: {path} not found"
            print(msg, file=sys.stderr, flush=True)
            print(msg)
        return None
    with np.load(path) as z:
        data = {k: z[k] for k in z.files}
    log(f"loaded {path}: " + ", ".join(f"{k}{data[k].shape}" for k in sorted(data)))
    return data


def load_digits_split() -> dict:
    """scikit-learn's digits scaled to [0, 1]: 70/30 train+val/test, then 80/20 train/val.

    Both splits stratified with ``random_state=0`` (1005 / 252 / 540 rows).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    X_tr, X_va, y_tr, y_va = train_test_split(
        X_tr, y_tr, test_size=0.2, stratify=y_tr, random_state=0
    )
    return {
        "X_train": X_tr,
        "y_train": y_tr,
        "X_val": X_va,
        "y_val": y_va,
        "X_test": X_te,
        "y_test": y_te,
    }


def load_dataset(name: str, clinc_path: Path, *, announce_missing: bool = True) -> dict | None:
    """Train/val/test splits of ``"digits"`` or ``"clinc150"`` (None if the file is missing),
    with CLINC150's out-of-scope test rows (``X_oos_test``) where the file has them."""
    if name == "digits":
        return load_digits_split()
    d = load_clinc(clinc_path, announce_missing=announce_missing)
    if d is None:
        return None
    return {k: d[k] for k in (*SPLIT_KEYS, "X_oos_test") if k in d}


def synthetic_blobs(
    n_rows: int,
    n_features: int,
    n_classes: int,
    seed: int,
    chunk: int = 65536,
    balanced: bool = False,
):
    """Gaussian blobs in float32, generated in row chunks (no large temporaries).

    The class centres and the per-feature noise scales depend only on
    ``n_features``/``n_classes`` (seed 0), so different ``seed`` values draw
    different samples of the same distribution.
    """
    base = np.random.default_rng(0)
    centers = base.standard_normal((n_classes, n_features)).astype(np.float32)
    noise_scale = np.geomspace(0.5, 10.0, n_features).astype(np.float32)
    base.shuffle(noise_scale)
    rng = np.random.default_rng(seed)
    if balanced:
        y = rng.permutation(np.arange(n_rows) % n_classes)
    else:
        y = rng.integers(0, n_classes, n_rows)
    X = np.empty((n_rows, n_features), dtype=np.float32)
    for s in range(0, n_rows, chunk):
        e = min(s + chunk, n_rows)
        block = rng.standard_normal((e - s, n_features), dtype=np.float32)
        block *= noise_scale
        block += centers[y[s:e]]
        X[s:e] = block
    return X, y
