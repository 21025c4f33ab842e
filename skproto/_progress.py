"""Progress lines of long work, printed with ``verbose``.

A :class:`Progress` prints ``[name] message (elapsed s)`` lines: at the end of
each step (:meth:`Progress.line`) and, inside a loop, at most once every
``PROGRESS_SECONDS`` (:meth:`Progress.tick`). Code deep inside a fit reads the
one its caller opened with :func:`reporting` (:func:`current`), so no
argument is threaded through helpers that run silently everywhere else (a
lazy derivation at predict time prints nothing). The value is per thread
(a context variable): a fit printing in one thread never makes another
thread's prediction print.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
from collections.abc import Callable, Iterator

__all__ = ["PROGRESS_SECONDS", "Progress", "current", "reported", "reporting"]

#: Seconds between the progress lines of one loop.
PROGRESS_SECONDS = 10.0


class Progress:
    """Prints ``[name] message (elapsed s)`` lines, a loop's at most every ``every`` seconds."""

    def __init__(self, name: str, every: float | None = None) -> None:
        self.name, self.every = name, PROGRESS_SECONDS if every is None else every
        self.began = self._shown = time.perf_counter()

    def line(self, message: str) -> None:
        """Print ``message`` now."""
        now = time.perf_counter()
        self._shown = now
        print(f"[{self.name}] {message} ({now - self.began:.2f}s)", flush=True)

    def tick(self, message: Callable[[], str]) -> None:
        """Print ``message()`` if the last line is ``every`` seconds old (else do nothing)."""
        if time.perf_counter() - self._shown >= self.every:
            self.line(message())


_CURRENT: contextvars.ContextVar[Progress | None] = contextvars.ContextVar(
    "skproto_progress", default=None
)


@contextlib.contextmanager
def reporting(name: str, verbose: int) -> Iterator[Progress | None]:
    """A :class:`Progress` for the block's work (None, silent, unless ``verbose``)."""
    token = _CURRENT.set(Progress(name) if verbose else None)
    try:
        yield _CURRENT.get()
    finally:
        _CURRENT.reset(token)


def current() -> Progress | None:
    """The :class:`Progress` of the work under way in this thread (None: silent)."""
    return _CURRENT.get()


def reported(method: Callable) -> Callable:
    """Run an estimator's ``method`` under :func:`reporting` (its class name, its ``verbose``)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with reporting(type(self).__name__, getattr(self, "verbose", 0)):
            return method(self, *args, **kwargs)

    return wrapper
