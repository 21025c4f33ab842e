"""Token prototypes against sentence prototypes on CLINC150's raw texts, side by side.

Run from the repository root::

    python benchmarks/bench_tokens.py --threads 2
    python benchmarks/bench_tokens.py --quick      # smoke run: 20 intents

Both models start from the same texts and the packaged all-MiniLM-L6-v2:
``SentenceEncoder()`` -> ``ProtoClassifier()`` (one pooled embedding per
text), and ``SentenceEncoder(output="tokens", max_tokens=24)`` ->
``ProtoClassifier(n_tokens=24)`` (prototypes are single tokens of training
sentences; a query's similarity to one is its best-matching token). Both at
their defaults with ``random_state=0``; LogisticRegression on the sentence
embeddings (C=10, the value bench_defaults.py chose on val) as a reference.
Encodings are cached under ``--cache`` (not timed). Then three test queries
explained by the token model: the query word that matched each prototype and
the training sentence and word the prototype is.

Writes ``tokens.md`` and ``tokens.json`` to ``--out-dir``.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from skproto import ProtoClassifier

from _harness.data import add_threads_and_note, benchmark_parser
from _harness.env import (
    finish_run,
    header_lines,
    machine_info,
    section_loads,
    set_threads,
    skproto_n_jobs,
    torch_run_record,
)
from _harness.report import log, md_table
from _harness.timing import timed, with_load

MAX_TOKENS = 24
EXAMPLES = 3


def load_texts(raw: Path, quick: bool) -> dict:
    data = json.loads(raw.read_text())
    out = {}
    for split in ("train", "test"):
        texts, labels = map(list, zip(*data[split]))
        out[split] = (texts, np.array(labels))
    if quick:
        keep = np.unique(out["train"][1])[:20]
        for split, (texts, labels) in out.items():
            rows = np.flatnonzero(np.isin(labels, keep))
            out[split] = ([texts[i] for i in rows], labels[rows])
    return out


def section_models(d: dict, cache: Path, n_jobs: int) -> dict:
    from skproto.encoders import SentenceEncoder

    (tr, y_tr), (te, y_te) = d["train"], d["test"]
    sentence = SentenceEncoder(memory=cache)
    tokens = SentenceEncoder(output="tokens", max_tokens=MAX_TOKENS, memory=cache)
    log("encoding (cached after the first run)")
    S_tr, S_te = sentence.transform(tr), sentence.transform(te)
    T_tr, T_te = tokens.transform(tr), tokens.transform(te)
    lengths = T_tr[:, -MAX_TOKENS:].sum(1)
    out = {
        "n_train": len(tr),
        "n_test": len(te),
        "n_classes": int(len(np.unique(y_tr))),
        "max_tokens": MAX_TOKENS,
        "tokens_per_text": float(lengths.mean()),
        "texts_cut": float(np.mean(lengths >= MAX_TOKENS)),
        "models": {},
    }
    models = {
        "LogisticRegression(C=10), sentence embeddings": (
            LogisticRegression(C=10.0, max_iter=2000),
            S_tr,
            S_te,
        ),
        "ProtoClassifier(), sentence embeddings": (
            ProtoClassifier(random_state=0, n_jobs=n_jobs),
            S_tr,
            S_te,
        ),
        f"ProtoClassifier(n_tokens={MAX_TOKENS}), token embeddings": (
            ProtoClassifier(n_tokens=MAX_TOKENS, random_state=0, n_jobs=n_jobs),
            T_tr,
            T_te,
        ),
    }
    fitted = {}
    for name, (model, X_tr, X_te) in models.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model, fit_s = timed(model.fit, X_tr, y_tr)
        acc = float(np.mean(model.predict(X_te) == y_te))
        out["models"][name] = {
            "test_accuracy": acc,
            "fit_s": fit_s,
            "warnings": sorted({type(w.message).__name__ for w in caught}),
        }
        fitted[name] = model
        log(f"  {name}: test accuracy {acc:.4f}, fit {fit_s:.1f} s")
    token_model = fitted[f"ProtoClassifier(n_tokens={MAX_TOKENS}), token embeddings"]
    rng = np.random.RandomState(0)
    picks = rng.choice(len(te), EXAMPLES, replace=False)
    ex = token_model.explain(T_te[picks], 2)
    words_q = tokens.tokens([te[i] for i in picks])
    rows = token_model.prototype_sample_indices_
    words_p = dict(zip(rows.tolist(), tokens.tokens([tr[r] for r in rows])))
    examples = []
    for j, i in enumerate(picks):
        c = int(np.searchsorted(ex.classes, ex.explained[j]))
        item = {
            "query": te[i],
            "true": str(y_te[i]),
            "predicted": str(ex.explained[j]),
            "evidence": [],
        }
        for r in range(2):
            k, row = int(ex.prototype_index[j, r]), int(ex.prototype_sample_index[j, r])
            q, p = int(ex.query_token[j, r]), int(ex.prototype_token[j, r])
            item["evidence"].append(
                {
                    "contribution": float(ex.contribution[j, r, c]),
                    "query_word": words_q[j][q] if q >= 0 else None,
                    "training_sentence": tr[row],
                    "prototype_word": words_p[row][p],
                    "prototype": k,
                }
            )
        examples.append(item)
    out["examples"] = examples
    return out


def render(res: dict) -> str:
    out = header_lines(
        res,
        "# Token prototypes against sentence prototypes",
        "20 intents",
        section_loads(res, ("models",)),
    )
    m = res["models"]
    out += [
        "## clinc150 (raw texts)",
        "",
        f"{m['n_train']} training and {m['n_test']} test texts, {m['n_classes']} intents; "
        f"tokens per text {m['tokens_per_text']:.1f} on average (special tokens left out), "
        f"{100 * m['texts_cut']:.1f}% of the texts fill all {m['max_tokens']} slots.",
        "",
        md_table(
            ["model", "test accuracy", "fit s", "warnings in fit"],
            [
                [
                    k,
                    f"{v['test_accuracy']:.4f}",
                    f"{v['fit_s']:.1f}",
                    ", ".join(v["warnings"]) or "none",
                ]
                for k, v in m["models"].items()
            ],
        ),
        "",
        "## What the token model matched",
        "",
    ]
    for item in m["examples"]:
        out.append(f"- {item['query']!r} -> **{item['predicted']}** (true {item['true']})")
        for e in item["evidence"]:
            out.append(
                f"  - {e['contribution']:+.3f}: query word {e['query_word']!r} matches "
                f"{e['prototype_word']!r} in training sentence "
                f"{e['training_sentence']!r}"
            )
    out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "tokens")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 intents")
    ap.add_argument("--cache", type=Path, default=Path(".skproto-cache"))
    add_threads_and_note(ap)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    threads = set_threads(args.threads)
    info = machine_info(with_torch=True)
    res = torch_run_record(args, threads, info)
    raw = Path(args.data).with_name("data_full.json")
    if not raw.is_file():
        print(f"{raw} not found: nothing to measure")
        return 0
    res["dataset"] = "clinc150"
    d = load_texts(raw, args.quick)
    res["models"] = with_load(section_models, d, args.cache, skproto_n_jobs(args.threads))
    res["targets"] = []
    finish_run(res, info, t_start, render, args.out_dir, "tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
