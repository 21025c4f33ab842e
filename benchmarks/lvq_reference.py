"""GLVQ reference rows for ``bench_proto.py``, run in a *throwaway* environment.

This file imports neither skproto, torch nor the benchmarks' ``_harness``
(only numpy, scipy and scikit-learn): ``bench_proto.py`` runs it with the
python of a separate virtual environment holding ``sklvq`` and
``sklearn-lvq`` (never the project's own venv). ``bench_proto.py
--make-lvq-venv`` creates that venv in ``benchmarks/.lvq-venv`` (ignored by
git); by hand, from the repository root::

    python3 -m venv benchmarks/.lvq-venv
    benchmarks/.lvq-venv/bin/pip install scikit-learn numpy sklvq sklearn-lvq
    benchmarks/.lvq-venv/bin/python benchmarks/lvq_reference.py --data DATA.npz --out out.json

For each package it records the installed versions, then

1. *stock*: imports it and fits its GLVQ model on the CLINC150 training split
   exactly as installed; the exception (type, message, the frame that raised
   it) is recorded if that fails;
2. *shimmed* (only where the stock fit failed): the same fit after the
   smallest monkey-patches that let the package run on current
   scikit-learn / NumPy / SciPy (listed in the output, applied in-process,
   nothing on disk is changed). Such a row measures the package's algorithm,
   not a usable release.

The result (JSON) goes to ``--out``; progress to stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import math
import platform
import sys
import time
import traceback
import warnings

import numpy as np

PACKAGES = {
    # distribution name: (module, estimator class, constructor kwargs, kwargs in --quick)
    "sklvq": (
        "sklvq",
        "GLVQ",
        {"prototype_n_per_class": 1, "random_state": 0},
        {"prototype_n_per_class": 1, "random_state": 0, "solver_params": {"max_runs": 2}},
    ),
    "sklearn-lvq": (
        "sklearn_lvq",
        "GlvqModel",
        {"prototypes_per_class": 1, "max_iter": 200, "random_state": 0},
        {"prototypes_per_class": 1, "max_iter": 50, "random_state": 0},
    ),
}

SHIM_DESCRIPTIONS = {
    "sklvq": [
        "LVQBaseClass._validate_data -> sklearn.utils.validation.validate_data(self, ...) "
        "(the method was removed from BaseEstimator in scikit-learn 1.6+)",
        "force_all_finite= -> ensure_all_finite= in validate_data / check_array calls "
        "(the keyword was removed in scikit-learn 1.8)",
    ],
    "sklearn-lvq": [
        "np.math = math (numpy.math was removed in NumPy 2.0)",
        "scipy.optimize.minimize called with np.ravel(x0) (SciPy >= 1.16 rejects a 2-D x0)",
    ],
}


def _log(msg):
    print(f"[lvq] {msg}", file=sys.stderr, flush=True)


def _version(dist):
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _error(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    frame = tb[-1] if tb else None
    # the deepest frame inside the package (where its code meets the new API)
    pkg_frames = [
        f
        for f in tb
        if "site-packages/sklvq" in f.filename or "site-packages/sklearn_lvq" in f.filename
    ]
    where = pkg_frames[-1] if pkg_frames else frame
    return {
        "type": type(exc).__name__,
        "message": str(exc),
        "at": None
        if where is None
        else f"{where.filename.split('site-packages/')[-1]}:{where.lineno}: {where.line}",
    }


def apply_shims(dist):
    if dist == "sklvq":
        import sklvq.models._base as base
        from sklearn.utils.validation import check_array, validate_data

        def _kw(k):
            if "force_all_finite" in k:
                k["ensure_all_finite"] = k.pop("force_all_finite")
            return k

        base.LVQBaseClass._validate_data = lambda self, *a, **k: validate_data(self, *a, **_kw(k))
        base.check_array = lambda *a, **k: check_array(*a, **_kw(k))
    elif dist == "sklearn-lvq":
        import scipy.optimize
        import sklearn_lvq.glvq as glvq

        np.math = math
        glvq.minimize = lambda fun, x0, *a, **k: scipy.optimize.minimize(fun, np.ravel(x0), *a, **k)


def fit_eval(module, cls, kwargs, d):
    est_cls = getattr(__import__(module), cls)
    est = est_cls(**kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = time.perf_counter()
        est.fit(d["X_train"], d["y_train"])
        t_fit = time.perf_counter() - t
        val = float(np.mean(est.predict(d["X_val"]) == d["y_val"]))
        best_pred = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            pred = est.predict(d["X_test"])
            best_pred = min(best_pred, time.perf_counter() - t)
    test = float(np.mean(pred == d["y_test"]))
    kinds = sorted({f"{w.category.__name__}: {str(w.message)[:120]}" for w in caught})
    return {
        "val_accuracy": val,
        "test_accuracy": test,
        "fit_s": t_fit,
        "predict_s": best_pred,
        "warnings": kinds[:5],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-shims", action="store_true")
    args = ap.parse_args(argv)

    with np.load(args.data) as z:
        d = {k: z[k] for k in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")}
    import scipy
    import sklearn

    res = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "packages": [],
    }
    for dist, (module, cls, kw_full, kw_quick) in PACKAGES.items():
        kwargs = kw_quick if args.quick else kw_full
        entry = {
            "distribution": dist,
            "version": _version(dist),
            "module": module,
            "estimator": cls,
            "params": kwargs,
        }
        res["packages"].append(entry)
        if entry["version"] is None:
            entry["stock"] = {
                "ok": False,
                "error": {
                    "type": "PackageNotFoundError",
                    "message": f"{dist} not installed",
                    "at": None,
                },
            }
            continue
        _log(f"{dist} {entry['version']}: stock {cls}({kwargs}) ...")
        try:
            entry["stock"] = {"ok": True, **fit_eval(module, cls, kwargs, d)}
            _log(f"  stock fit OK: test {entry['stock']['test_accuracy']:.4f}")
            continue
        except Exception as exc:
            entry["stock"] = {"ok": False, "error": _error(exc)}
            _log(f"  stock fit failed: {type(exc).__name__}: {exc}")
        if args.no_shims:
            continue
        entry["shims"] = SHIM_DESCRIPTIONS[dist]
        try:
            apply_shims(dist)
            entry["shimmed"] = {"ok": True, **fit_eval(module, cls, kwargs, d)}
            _log(
                f"  shimmed fit: test {entry['shimmed']['test_accuracy']:.4f}, "
                f"fit {entry['shimmed']['fit_s']:.1f}s"
            )
        except Exception as exc:
            entry["shimmed"] = {"ok": False, "error": _error(exc)}
            _log(f"  shimmed fit failed: {type(exc).__name__}: {exc}")
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
