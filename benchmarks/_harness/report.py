"""Progress log, markdown tables, targets and the ``<stem>.md`` / ``<stem>.json`` report."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress line on stderr, with the time since start."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


def fmt_params(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) if params else "defaults"


def md_table(headers, rows, align=None) -> str:
    """A markdown table; ``align`` is a string of 'l'/'r' per column."""
    cells = [[str(c) for c in r] for r in rows]
    widths = [
        max(len(str(h)), *(len(r[i]) for r in cells)) if cells else len(str(h))
        for i, h in enumerate(headers)
    ]
    align = align or "l" + "r" * (len(headers) - 1)

    def line(values):
        out = []
        for v, w, a in zip(values, widths, align):
            out.append(v.rjust(w) if a == "r" else v.ljust(w))
        return "| " + " | ".join(out) + " |"

    sep = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if a == "r" else ("-" * (w + 2)) for w, a in zip(widths, align)
        )
        + "|"
    )
    return "\n".join([line([str(h) for h in headers]), sep] + [line(r) for r in cells])


# ---------------------------------------------------------------- targets
def status(ok: bool | None) -> str:
    """PASS / FAIL, or SKIPPED where ``ok`` is None (nothing measured)."""
    return "SKIPPED" if ok is None else ("PASS" if ok else "FAIL")


def target_row(target: str, measured: str, ok: bool | None) -> dict:
    """One target of a report: what is asked, what was measured, its status."""
    return {"target": target, "measured": measured, "status": status(ok)}


def targets_table(targets: list[dict]) -> str:
    """The markdown table of rows made by :func:`target_row`."""
    return md_table(
        ["target", "measured", "status"],
        [[t["target"], t["measured"], t["status"]] for t in targets],
        "lll",
    )


# ---------------------------------------------------------------- files
def json_default(o):
    """``json.dumps`` fallback: numpy scalars and arrays, paths, else ``str``."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def write_results(res: dict, report: str, out_dir: Path, stem: str) -> None:
    """Print the report and save it as ``<stem>.md`` with the raw numbers in ``<stem>.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{stem}.json").write_text(json.dumps(res, indent=2, default=json_default) + "\n")
    print(report)
    (out_dir / f"{stem}.md").write_text(report + "\n")
    log(
        f"wrote {out_dir / (stem + '.md')} and {out_dir / (stem + '.json')}; "
        f"wall time {res['wall_s']:.0f}s"
    )
