"""What the benchmarks record about the machine and the code they measured.

``machine_info`` (at the start) and ``finish_machine`` (at the end) fill
``res["machine"]``; ``set_threads`` caps torch and the BLAS/OpenMP pools;
``header_lines`` is the report header of the torch benchmarks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import scipy
import sklearn

import skproto

from .paths import REPO
from .report import log, write_results


def loadavg() -> list[float] | None:
    """The 1, 5 and 15-min load averages, rounded (None where the OS has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def skproto_state() -> str:
    """Hash of the imported skproto sources, subpackages included (detects edits during a run).

    Every ``*.py`` under the package folder, in path order, hashed with its path
    relative to the package (for a flat package the same hash as hashing the
    file names).
    """
    root = Path(skproto.__file__).parent
    h = hashlib.sha1()
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + f.read_bytes())
    return h.hexdigest()[:12]


def machine_info(*, with_torch: bool = False) -> dict:
    """Date, machine, library versions, thread pools, skproto's location, hash and commit."""
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "sklearn": sklearn.__version__,
        "skproto": skproto.__version__,
        "loadavg_start": loadavg(),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        mem = Path("/proc/meminfo").read_text()
        info["mem_total_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", mem).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        pass
    try:
        from threadpoolctl import threadpool_info

        keys = (
            "user_api",
            "internal_api",
            "prefix",
            "version",
            "num_threads",
            "threading_layer",
            "architecture",
            "filepath",
        )
        info["threadpools"] = [{k: p.get(k) for k in keys if k in p} for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = "threadpoolctl not installed"
    info["skproto_path"] = str(Path(skproto.__file__).parent)
    info["skproto_state"] = skproto_state()
    try:  # read-only git queries: which code was measured
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "skproto"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        if Path(skproto.__file__).resolve().parent == (REPO / "skproto").resolve():
            info["skproto_uncommitted_changes"] = bool(dirty)
    except (OSError, subprocess.SubprocessError):
        pass
    if with_torch:
        import torch

        info["torch"] = torch.__version__
    return info


def finish_machine(res: dict, info: dict) -> None:
    """Record the end load and whether the skproto sources changed during the run."""
    res["machine"]["loadavg_end"] = loadavg()
    if skproto_state() != info.get("skproto_state"):
        res["machine"]["skproto_changed_during_run"] = True
        log("WARNING: the skproto sources changed while the benchmark ran")


# ---------------------------------------------------------------- threads
_LIMITS = None  # keeps the threadpoolctl limit alive for the whole run


def set_threads(n: int) -> dict:
    """Cap torch and the BLAS/OpenMP pools to ``n`` threads (0: library defaults)."""
    import torch

    global _LIMITS
    if n > 0:
        torch.set_num_threads(n)
        try:
            from threadpoolctl import threadpool_limits

            _LIMITS = threadpool_limits(limits=n)
        except ImportError:
            pass
    return {
        "requested": n,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
    }


def skproto_n_jobs(threads: int) -> int:
    """``n_jobs`` that gives skproto's torch estimators the same threads (0: every core)."""
    return threads if threads > 0 else -1


def blas_threads() -> int | None:
    """Threads of the BLAS pool (the largest, if several), or None without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info

        return max(
            (p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"), default=None
        )
    except ImportError:
        return None


# ---------------------------------------------------------------- report header
def machine_line(m: dict) -> str:
    """``- machine: platform, CPU model, CPUs, RAM`` of a ``machine_info`` record."""
    return (
        f"- machine: {m['platform']}, {m.get('cpu_model', '?')}, "
        f"{m['cpu_count']} CPUs ({m.get('cpu_affinity')} usable), "
        f"{m.get('mem_total_gib', '?')} GiB RAM"
    )


def section_loads(res: dict, sections) -> dict:
    """1-min load before/after each section that recorded it (see ``timing.with_load``)."""
    return {
        k: res[k]["loadavg_1min_before_after"]
        for k in sections
        if res.get(k) and "loadavg_1min_before_after" in res[k]
    }


def short_header(res: dict, title: str) -> list[str]:
    """Report header of the small benchmarks: title, then date, wall time, commit, threads."""
    m = res["machine"]
    return [
        title,
        "",
        f"- date: {m['date']}; total wall time {res['wall_s']:.0f} s; "
        f"skproto commit {m.get('git_commit', '?')[:10]}; threads {res['threads']['requested']}",
    ]


def header_lines(res: dict, title: str, quick_text: str, loads: dict) -> list[str]:
    """Report header of the torch benchmarks: date, machine, versions, threads, load."""
    m = res["machine"]
    th = res["threads"]
    out = [title, ""]
    out.append(
        f"- date: {m['date']}; total wall time {res['wall_s']:.0f} s"
        + (f" (--quick: {quick_text}; not the benchmark's numbers)" if res["quick"] else "")
    )
    out.append(machine_line(m))
    out.append(
        f"- python {m['python']}, numpy {m['numpy']}, scipy {m['scipy']}, "
        f"scikit-learn {m['sklearn']}, torch {m['torch']}, skproto {m['skproto']} "
        f"(commit {m.get('git_commit', '?')[:10]}"
        + (", skproto/ has uncommitted changes" if m.get("skproto_uncommitted_changes") else "")
        + f"; sources hash {m.get('skproto_state')})"
    )
    out.append(
        f"- threads: --threads {th['requested']} -> torch {th['torch_num_threads']} "
        "intra-op thread(s); BLAS/OpenMP pools "
        + ("capped to the same (threadpoolctl)" if th["requested"] > 0 else "at their defaults")
    )
    if res.get("note"):
        out.append(f"- note: {res['note']}")
    if m.get("skproto_changed_during_run"):
        out.append("- WARNING: the skproto sources changed while the benchmark ran")
    out.append(
        f"- load average (1, 5, 15 min) at start / end: {m.get('loadavg_start')} / "
        f"{m.get('loadavg_end')}; 1-min load before/after each section: "
        + ", ".join(f"{k} {v}" for k, v in loads.items())
        + f". This benchmark accounts for a load of about {max(1, th['requested'])}; "
        "more means other processes competed for the cores."
    )
    out.append("")
    return out


def start_run(doc: str, stem: str, argv=None) -> tuple:
    """``(args, res, n_jobs, t_start)`` of a script with the common options only.

    Parses ``--data``, ``--out-dir``, ``--threads`` and ``--note``, records
    the machine and sets the thread pools; ``res`` holds ``machine``,
    ``threads`` and ``note``, and ``n_jobs`` is what skproto estimators get.
    """
    from .data import add_threads_and_note, benchmark_parser

    ap = benchmark_parser(doc, stem)
    add_threads_and_note(ap)
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    threads = set_threads(args.threads)  # (first: the record shows the capped pools)
    info = machine_info(with_torch=True)
    res = {"machine": info, "threads": threads, "note": args.note}
    return args, res, skproto_n_jobs(args.threads), t_start


def finish_run(res: dict, info: dict, t_start: float, render, out_dir: Path, stem: str) -> None:
    """Close the machine record, note the wall time since ``t_start``, write the results.

    ``render(res)`` makes the markdown report once ``res["wall_s"]`` is set.
    """
    finish_machine(res, info)
    res["wall_s"] = time.perf_counter() - t_start
    write_results(res, render(res), out_dir, stem)


def torch_run_record(args, threads: dict, info: dict) -> dict:
    """The start of a torch benchmark's results: options, machine, threads, data."""
    import torch

    return {
        "quick": args.quick,
        "note": args.note,
        "machine": info,
        "threads": threads,
        "torch_num_threads": torch.get_num_threads(),
        "data": str(args.data),
    }
