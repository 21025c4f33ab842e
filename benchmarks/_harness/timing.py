"""Wall-clock timing, per-call latency statistics, load average and peak memory."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from .env import loadavg


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t


def best_time(fn, repeat: int):
    """(result of the last call, best seconds over ``repeat`` calls)."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        out, t = timed(fn)
        best = min(best, t)
    return out, best


def predict_time(model, X, repeat: int = 2):
    """(``model.predict(X)``, best seconds over ``repeat`` calls)."""
    return best_time(lambda: model.predict(X), repeat)


def call_latency(fns: dict, inputs, n_calls: int, warmup: int, block: int = 50) -> dict:
    """Seconds per call of each ``fns[name](x)``, ``x`` cycling through ``inputs``.

    Each function first gets ``warmup`` untimed calls; then ``n_calls`` calls,
    each timed on its own. The functions take turns in blocks of ``block``
    calls (all on the same inputs), so that a burst of load from other
    processes falls on all of them alike. Returns, per name, the median, 90th
    percentile, mean, min and max in seconds.
    """
    n = len(inputs)
    for fn in fns.values():
        for i in range(warmup):
            fn(inputs[i % n])
    times = {name: np.empty(n_calls) for name in fns}
    clock = time.perf_counter
    for start in range(0, n_calls, block):
        stop = min(start + block, n_calls)
        for name, fn in fns.items():
            out = times[name]
            for i in range(start, stop):
                x = inputs[i % n]
                t = clock()
                fn(x)
                out[i] = clock() - t
    return {
        name: {
            "n_calls": n_calls,
            "warmup": warmup,
            "block": block,
            "median_s": float(np.median(t)),
            "p90_s": float(np.quantile(t, 0.9)),
            "mean_s": float(np.mean(t)),
            "min_s": float(np.min(t)),
            "max_s": float(np.max(t)),
        }
        for name, t in times.items()
    }


def with_load(section, *args, **kwargs) -> dict:
    """Run a section; record its wall time and the 1-min load average around it."""
    before = loadavg()
    out, secs = timed(section, *args, **kwargs)
    out["section_wall_s"] = secs
    out["loadavg_1min_before_after"] = [before and before[0], (loadavg() or [None])[0]]
    return out


# ---------------------------------------------------------------- memory (Linux /proc)
def proc_status_kib(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (e.g. VmRSS, VmHWM), or None."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    m = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def proc_meminfo_kib(key: str) -> int | None:
    """A ``kB`` field of ``/proc/meminfo`` (e.g. MemAvailable), or None."""
    try:
        m = re.search(rf"^{key}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
