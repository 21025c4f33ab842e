"""Time to write the HTML report of 1,000 CLINC150 queries, its size, and a browser opening it.

Run from the repository root::

    python benchmarks/bench_report.py               # CLINC150 (digits if the file is missing)
    python benchmarks/bench_report.py --threads 2   # torch / BLAS threads (default 1)
    python benchmarks/bench_report.py --quick       # smoke run: 100 queries

Each estimator is fitted at its defaults (``random_state=0``) on the training
split; fitting is not timed. Then ``skproto.explain.make_report`` writes the
report of the first 1,000 test queries with the raw training texts as cases
(from ``data_full.json`` beside the embeddings; training row numbers stand in
when it is missing), the training data for the gallery and purity, best of
2 runs. When a headless Chromium is installed it opens each file; the load
time and the console messages (there should be none) are recorded.

Writes ``report.md`` and ``report.json`` to ``--out-dir`` (default
``benchmarks/results``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from skproto import NearestMeanClassifier, ProtoClassifier, RBFPrototypeClassifier
from skproto.explain import make_report

from _harness.data import add_threads_and_note, benchmark_parser, load_dataset
from _harness.env import (
    finish_run,
    header_lines,
    machine_info,
    section_loads,
    set_threads,
    skproto_n_jobs,
    torch_run_record,
)
from _harness.report import log, md_table, target_row, targets_table
from _harness.timing import best_time, timed, with_load

QUERIES = {"full": 1000, "quick": 100}
TARGET_S = 10.0


def browser_open(path: Path) -> dict | None:
    """Headless Chromium's load of ``path``: seconds and console lines (None: no browser)."""
    browser = next(
        (shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None
    )
    if browser is None:
        return None
    with tempfile.TemporaryDirectory() as profile:
        start = time.perf_counter()
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        seconds = time.perf_counter() - start
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return {
        "seconds": seconds,
        "returncode": done.returncode,
        "console": console,
        "dom_chars": len(done.stdout),
    }


def training_texts(data_path: Path, n_train: int) -> list | None:
    raw = Path(data_path).with_name("data_full.json")
    if not raw.is_file():
        return None
    texts = [text for text, _ in json.loads(raw.read_text())["train"]]
    return texts if len(texts) == n_train else None


def section_report(d: dict, *, n_queries: int, data_path: Path, n_jobs: int) -> dict:
    cases = training_texts(data_path, len(d["X_train"])) if d["name"] == "clinc150" else None
    cases_kind = "training texts" if cases is not None else "training row numbers"
    X_q, y_q = d["X_test"][:n_queries], d["y_test"][:n_queries]
    models = {
        "NearestMeanClassifier()": NearestMeanClassifier(),
        "ProtoClassifier()": ProtoClassifier(random_state=0, n_jobs=n_jobs),
        # the CBC head: its explanations list presence and absence (the richest report)
        "RBFPrototypeClassifier(loss='cbc')": RBFPrototypeClassifier(
            loss="cbc", random_state=0, n_jobs=n_jobs
        ),
    }
    out = {"n_queries": len(X_q), "cases": cases_kind, "estimators": {}}
    for name, est in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, fit_s = timed(est.fit, d["X_train"], d["y_train"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "report.html"

            def write(model=model, path=path):
                make_report(
                    model,
                    X_q,
                    y_q,
                    cases=cases,
                    X_train=d["X_train"],
                    y_train=d["y_train"],
                    path=path,
                )

            _, best = best_time(write, 2)
            size = path.stat().st_size
            opened = browser_open(path)
        out["estimators"][name] = {
            "fit_s": fit_s,
            "report_s": best,
            "bytes": size,
            "n_prototypes": int(len(model.prototypes_)),
            "browser": opened,
        }
        log(
            f"{name}: report of {len(X_q)} queries in {best:.2f} s, {size / 1e6:.1f} MB; "
            f"browser: {opened and round(opened['seconds'], 1)} s, "
            f"console {opened and len(opened['console'])}"
        )
    return out


def evaluate_targets(res: dict) -> list[dict]:
    sec = res["report"]
    rows = []
    for name, r in sec["estimators"].items():
        b = r["browser"]
        rows.append(
            target_row(
                f"{name}: report of {sec['n_queries']} queries under {TARGET_S:g} s",
                f"{r['report_s']:.2f} s",
                r["report_s"] < TARGET_S,
            )
        )
        rows.append(
            target_row(
                f"{name}: the file opens in headless Chromium with no console message",
                "no browser"
                if b is None
                else f"{b['seconds']:.1f} s, {len(b['console'])} messages",
                None if b is None else (b["returncode"] == 0 and not b["console"]),
            )
        )
    return rows


def render(res: dict) -> str:
    out = header_lines(
        res, "# HTML report benchmark", "100 queries", section_loads(res, ("report",))
    )
    sec = res["report"]
    out += [
        f"## {res['dataset']}",
        "",
        f"{sec['n_queries']} test queries; cases: {sec['cases']}; gallery and purity over "
        f"the training rows; best of 2 runs; fitting not timed.",
        "",
    ]
    rows = []
    for name, r in sec["estimators"].items():
        b = r["browser"]
        rows.append(
            [
                name,
                r["n_prototypes"],
                f"{r['fit_s']:.1f}",
                f"{r['report_s']:.2f}",
                f"{r['bytes'] / 1e6:.2f}",
                "-" if b is None else f"{b['seconds']:.1f}",
                "-" if b is None else str(len(b["console"])),
            ]
        )
    out.append(
        md_table(
            [
                "estimator",
                "prototypes",
                "fit s",
                "report s",
                "MB",
                "browser load s",
                "console messages",
            ],
            rows,
        )
    )
    out += ["", "## Targets", "", targets_table(res["targets"]), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "report")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 queries")
    add_threads_and_note(ap)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    threads = set_threads(args.threads)
    info = machine_info(with_torch=True)
    res = torch_run_record(args, threads, info)
    d = load_dataset("clinc150", args.data, announce_missing=False)
    res["dataset"] = "clinc150"
    if d is None:
        d = load_dataset("digits", args.data)
        res["dataset"] = "digits"
    d["name"] = res["dataset"]
    res["report"] = with_load(
        section_report,
        d,
        n_queries=QUERIES["quick" if args.quick else "full"],
        data_path=args.data,
        n_jobs=skproto_n_jobs(args.threads),
    )
    res["targets"] = evaluate_targets(res)
    finish_run(res, info, t_start, render, args.out_dir, "report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
