"""A disk cache of encodings, one entry per input, shared by every clone of an encoder.

A grid search clones the encoder for every fit and gives it a different
subset of the rows each time; caching whole calls (``joblib.Memory.cache``)
would miss on every new subset. This cache keys each *input* by a hash of
the input and of the encoder's settings (model, options), so each text is
encoded once, whatever the fold. Entries are written as append-only batch
files (one ``.npz`` per call that encoded something new, written to a
temporary name and renamed), so concurrent workers never corrupt each other;
at worst two of them encode the same text twice.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import types
import uuid
from pathlib import Path

import numpy as np

__all__ = ["EncodingCache", "cache_directory", "callable_key"]


def _value_bytes(value) -> bytes:
    """A value as bytes that are the same in every process (arrays by their bytes)."""
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return f"{value.dtype.str}{value.shape}".encode() + value.tobytes()
    if isinstance(value, types.CodeType):
        return _code_bytes(value)
    if isinstance(value, (tuple, list)):
        return b"(" + b",".join(_value_bytes(v) for v in value) + b")"
    if isinstance(value, (set, frozenset)):  # string sets iterate in a per-process order
        return b"{" + b",".join(sorted(_value_bytes(v) for v in value)) + b"}"
    return repr(value).encode()


def _code_bytes(code: types.CodeType) -> bytes:
    """A code object's instructions, constants (nested code too) and names."""
    return b"|".join([code.co_code, _value_bytes(code.co_consts), repr(code.co_names).encode()])


def callable_key(f) -> str:
    """A name for the function ``f`` in a cache key: its module and qualified name,
    and for a function, a hash of its code, constants and closure values (every
    lambda is ``<lambda>``: ``lambda x: 10 * x`` read ``lambda x: x``'s entries).
    Another callable is named by its type and ``repr``."""
    if f is None:
        return "None"
    code = getattr(f, "__code__", None)
    if code is None:
        return f"{type(f).__module__}.{type(f).__qualname__}:{f!r}"
    parts = [_code_bytes(code), _value_bytes(getattr(f, "__defaults__", None))]
    for cell in getattr(f, "__closure__", None) or ():
        try:
            parts.append(_value_bytes(cell.cell_contents))
        except ValueError:  # an empty cell
            parts.append(b"<empty>")
    digest = hashlib.sha256(b"|".join(parts)).hexdigest()[:16]
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', '?')}:{digest}"


def cache_directory(memory) -> Path | None:
    """The cache folder of ``memory``: None, a path, or a ``joblib.Memory`` (its location)."""
    if memory is None:
        return None
    location = getattr(memory, "location", memory)
    if location is None:  # joblib.Memory(None): caching disabled
        return None
    if not isinstance(location, (str, os.PathLike)):
        raise ValueError(
            f"memory must be None, a path or a joblib.Memory with a location, got {memory!r}."
        )
    return Path(location) / "skproto_encodings"


class EncodingCache:
    """Per-input encodings under ``directory / settings-hash``."""

    def __init__(self, directory: Path, settings: str):
        self.folder = Path(directory) / hashlib.sha256(settings.encode()).hexdigest()[:24]
        self._index: dict[str, np.ndarray] = {}
        self._seen: set[str] = set()

    @staticmethod
    def key(item) -> str:
        """Hash of one input: a text's UTF-8, an array's dtype, shape and bytes, else its pickle."""
        if isinstance(item, str):
            data = b"s" + item.encode("utf-8")
        elif hasattr(item, "__array__") and not isinstance(item, (list, tuple)):
            a = np.ascontiguousarray(np.asarray(item))
            if a.dtype.hasobject:  # its bytes are pointers: key its values
                data = b"o" + f"{a.shape}".encode() + pickle.dumps(a.tolist(), protocol=4)
            else:
                data = b"a" + f"{a.dtype.str}{a.shape}".encode() + a.tobytes()
        else:
            data = b"p" + pickle.dumps(item, protocol=4)
        return hashlib.sha256(data).hexdigest()

    def _refresh(self) -> None:
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("batch-*.npz"):
            if path.name in self._seen:
                continue
            with np.load(path) as z:
                for k, v in zip(z["keys"], z["values"]):
                    self._index[str(k)] = v
            self._seen.add(path.name)

    def lookup(self, keys: list[str]) -> list[np.ndarray | None]:
        self._refresh()
        return [self._index.get(k) for k in keys]

    def store(self, keys: list[str], values: np.ndarray) -> None:
        if not keys:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"batch-{uuid.uuid4().hex}.npz"
        tmp = self.folder / f".{name}.tmp"
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys), values=np.asarray(values))
        os.replace(tmp, self.folder / name)
        for k, v in zip(keys, values):
            self._index[k] = v
        self._seen.add(name)
