"""Folders of the benchmark harness (all relative to this checkout, no machine paths)."""

from __future__ import annotations

from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parents[1]
"""``benchmarks/``."""
REPO = BENCH_DIR.parent
"""The repository root."""
DEFAULT_OUT = BENCH_DIR / "results"
"""Default ``--out-dir`` of every script."""
