"""GPU check of the torch estimators on CLINC150 (needs a CUDA device).

Run from the repository root on a machine with a GPU::

    python benchmarks/bench_gpu.py [--data /path/to/minilm_l6_v2.npz] [--out-dir DIR]

For ProtoClassifier (each kind at the configuration ``bench_proto.py`` chose
on val) and RBFPrototypeClassifier (the robust model ``bench_rbf.py`` chose),
both read from their saved ``results/proto.json`` and ``results/rbf.json``,
it fits on ``train`` with ``device="cuda"`` and with ``device="cpu"`` in the
same run, and reports fit seconds, val accuracy, whether two CUDA fits with the
same ``random_state`` give identical parameters, and whether the CUDA-trained
model, pickled and loaded in a process that sees no GPU, predicts exactly what
it predicted before pickling. Test data is not used. Results go to
``<out-dir>/gpu.md`` and ``gpu.json``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from skproto import ProtoClassifier, RBFPrototypeClassifier

from _harness.data import benchmark_parser, load_clinc
from _harness.env import machine_info
from _harness.report import log, md_table, write_results


def configs(results_dir: Path) -> dict:
    """``{name: (class, params)}``: the configurations the CPU benchmarks chose on val.

    Read from their saved results (``proto.json``: each kind's row;
    ``rbf.json``: CLINC150's chosen robust model, built as ``bench_rbf.py``
    builds it), so that this check follows them (constants copied here went
    stale: another ``alpha``, other counts per class, another margin, and no
    ProtoPNet head).
    """
    import json

    from bench_proto import PROTO_FIXED
    from bench_rbf import make as make_rbf

    proto = json.loads((results_dir / "proto.json").read_text())["proto"]
    out = {}
    for row in proto["rows"]:
        params = {**PROTO_FIXED, **row["params"]}
        params = {k: v for k, v in params.items() if k not in ("device", "n_jobs")}
        out[f"ProtoClassifier {row['kind']}"] = (ProtoClassifier, params)
    rbf = json.loads((results_dir / "rbf.json").read_text())
    clinc = next(ds for ds in rbf["datasets"] if ds["dataset"] == "clinc150")
    cfg = clinc["selection"]["robust"]["chosen"]["cfg"]
    model = make_rbf("robust", cfg, clinc["n_classes"], clinc["epochs"], clinc["typical_distance"])
    params = {k: v for k, v in model.get_params().items() if k not in ("device", "n_jobs")}
    out["RBFPrototypeClassifier robust"] = (RBFPrototypeClassifier, params)
    return out


def warm_up(d: dict) -> None:
    """One small CUDA fit first, so that no timed fit pays for CUDA's start-up."""
    ProtoClassifier(max_epochs=1, random_state=0, device="cuda").fit(
        d["X_train"][:600], d["y_train"][:600]
    )


_CPU_PREDICT = """
import pickle, sys
import numpy as np
import torch
assert not torch.cuda.is_available(), "this process must not see a GPU"
clf = pickle.loads(open(sys.argv[1], "rb").read())
np.save(sys.argv[3], clf.predict_proba(np.load(sys.argv[2])))
"""


def _state_equal(a, b) -> bool:
    return a._state.keys() == b._state.keys() and all(
        np.array_equal(a._state[k], b._state[k]) for k in a._state
    )


def check(name: str, cls, params: dict, d: dict, tmp: Path) -> dict:
    X, y, Xv, yv = d["X_train"], d["y_train"], d["X_val"], d["y_val"]
    rec = {"params": params}
    for dev in ("cuda", "cpu"):
        start = time.perf_counter()
        model = cls(**params, device=dev).fit(X, y)  # fit returns numpy state: synchronised
        rec[f"{dev}_fit_s"] = time.perf_counter() - start
        rec[f"{dev}_val_accuracy"] = float(model.score(Xv, yv))
        rec[f"{dev}_epochs"] = int(model.n_iter_)
        if dev == "cuda":
            gpu = model
        log(f"{name} {dev}: fit {rec[f'{dev}_fit_s']:.1f}s, val {rec[f'{dev}_val_accuracy']:.4f}")
    rec["cuda_repeatable"] = _state_equal(gpu, cls(**params, device="cuda").fit(X, y))
    proba = gpu.predict_proba(Xv)
    (tmp / "m.pkl").write_bytes(pickle.dumps(gpu))
    np.save(tmp / "X.npy", Xv)
    subprocess.run(
        [
            sys.executable,
            "-c",
            _CPU_PREDICT,
            str(tmp / "m.pkl"),
            str(tmp / "X.npy"),
            str(tmp / "p.npy"),
        ],
        check=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    rec["pickled_cpu_predict_identical"] = bool(np.array_equal(np.load(tmp / "p.npy"), proba))
    return rec


def render(res: dict) -> str:
    m = res["machine"]
    out = [
        "# GPU check of the torch estimators (CLINC150)",
        "",
        f"- date: {m['date']}; total wall time {res['wall_s']:.0f} s",
        f"- GPU: {res['gpu']}; CPU: {m.get('cpu_model', '?')}, {m['cpu_count']} CPUs; "
        f"torch {res['torch']} (intra-op threads {res['torch_threads']}), numpy {m['numpy']}, "
        f"scikit-learn {m['sklearn']}",
        "- fit on `train` (15,000 x 384, 150 classes) with the configurations the CPU "
        "benchmarks chose on val; accuracy on `val`; test not used. 'repeatable': a second "
        "CUDA fit with the same random_state gives bit-identical parameters. 'pickled, no-GPU "
        "predict': the CUDA-trained model, pickled and loaded in a process with "
        "CUDA_VISIBLE_DEVICES='', gives exactly the same predict_proba.",
        "",
    ]
    rows = [
        [
            name,
            f"{r['cuda_fit_s']:.1f}",
            f"{r['cpu_fit_s']:.1f}",
            f"{r['cuda_val_accuracy']:.4f}",
            f"{r['cpu_val_accuracy']:.4f}",
            f"{r['cuda_epochs']}/{r['cpu_epochs']}",
            "yes" if r["cuda_repeatable"] else "no",
            "yes" if r["pickled_cpu_predict_identical"] else "NO",
        ]
        for name, r in res["checks"].items()
    ]
    out.append(
        md_table(
            [
                "model",
                "fit s cuda",
                "fit s cpu",
                "val acc cuda",
                "val acc cpu",
                "epochs cuda/cpu",
                "repeatable on cuda",
                "pickled, no-GPU predict",
            ],
            rows,
        )
    )
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "gpu")
    ap.add_argument("--only", nargs="*", default=None, help="names of configurations to run")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return 0
    d = load_clinc(args.data)
    if d is None:
        return 0
    start = time.perf_counter()
    res = {
        "machine": machine_info(),
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "checks": {},
    }
    warm_up(d)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (cls, params) in configs(Path(__file__).parent / "results").items():
            if args.only is None or name in args.only:
                res["checks"][name] = check(name, cls, params, d, Path(tmp))
    res["wall_s"] = time.perf_counter() - start
    write_results(res, render(res), args.out_dir, "gpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
