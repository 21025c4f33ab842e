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

import contextlib
import dataclasses
import dis
import functools
import hashlib
import os
import pickle
import re
import site
import sys
import sysconfig
import threading
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import warn_user

__all__ = ["EncodingCache", "cache_directory", "callable_key", "numerics_key"]


def _value_bytes(value, depth: int = 0) -> bytes:
    """A value as bytes that are the same in every process: arrays and tensors by
    their bytes, containers by their items, functions by :func:`callable_key`, torch
    modules by their layers and weights, other objects by their type and
    attributes (a default ``repr`` holds a memory address; a tensor's ``repr``
    rounds to 4 decimals and abbreviates beyond 1,000 values)."""
    if isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return f"{value.dtype.str}{value.shape}".encode() + value.tobytes()
    if depth > 6:  # (a cycle, or deep nesting: values and dataclasses by their repr,
        # which sees cycles; <deep> alone keyed Outer(Mid(Inner(k=1))) as k=10)
        if isinstance(value, (set, frozenset)):  # (its repr's order is per process)
            return b"<deep>{" + b",".join(sorted(repr(v).encode() for v in value)) + b"}"
        deep = isinstance(value, _SIMPLE + (tuple, list, dict, set, frozenset))
        if deep or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
            return b"<deep>" + repr(value).encode()
        return b"<deep>"
    module = type(value).__module__ or ""
    if (
        module.startswith("torch")
        and not isinstance(value, type)  # (torch.Tensor itself: "unbound method detach")
        and _has(value, "detach")
        and _has(value, "numpy")
    ):
        import torch  # (a tensor: torch is imported already)

        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:  # numpy has none: its bits, as int16, key it
            return b"bfloat16" + _value_bytes(value.view(torch.int16).numpy(), depth + 1)
        return b"tensor" + _value_bytes(value.numpy(), depth + 1)
    if (
        _has(value, "state_dict")
        and _has(value, "named_parameters")
        and not isinstance(value, type)  # (a module's class: the __class__ cell of super())
    ):  # a torch module
        # its layers, each one's class and forward code and its plain attributes (a
        # scale, a pooling option), and every tensor: parameters and all buffers
        # (state_dict leaves out non-persistent ones, e.g. an input mean)
        parts = [repr(value).encode()]
        for name, layer in value.named_modules():
            cls = type(layer)
            parts.append(f"{name}:{cls.__module__}.{cls.__qualname__}".encode())
            try:
                with _keying(cls):  # (a forward naming its class: that class by its name
                    # here; its methods are in module_code, which leaves out __init__)
                    forward = callable_key(cls.forward, depth + 1).encode()
            except AttributeError:  # (a TorchScript module's forward is no attribute of
                # its class: torch.jit.script / trace raised here; its compiled code keys it)
                forward = b"script:" + str(getattr(layer, "code", "")).encode()
            parts.append(forward)
            parts.append(_value_bytes(module_attributes(layer), depth + 1))
        # every method of the layers' own classes (a helper forward calls) and the
        # globals their code reads (a module-level constant): once per class
        parts.append(module_code(value, depth + 1))
        tensors = [*value.named_parameters(), *value.named_buffers()]
        parts += [k.encode() + _value_bytes(v, depth + 1) for k, v in tensors]
        return b"module(" + b"|".join(parts) + b")"
    if isinstance(value, types.CodeType):
        return _code_bytes(value)
    if isinstance(value, (tuple, list)):
        return b"(" + b",".join(_value_bytes(v, depth + 1) for v in value) + b")"
    if isinstance(value, (set, frozenset)):  # string sets iterate in a per-process order
        return b"{" + b",".join(sorted(_value_bytes(v, depth + 1) for v in value)) + b"}"
    if isinstance(value, dict):
        items = (
            _value_bytes(k, depth + 1) + b":" + _value_bytes(v, depth + 1) for k, v in value.items()
        )
        return b"dict{" + b",".join(sorted(items)) + b"}"
    if isinstance(value, (str, bytes, int, float, complex, type(None), np.generic)):
        return repr(value).encode()
    if isinstance(value, (types.FunctionType, types.MethodType, functools.partial)):
        return callable_key(value, depth + 1).encode()
    if isinstance(value, _BUILTINS):  # by its name: its repr holds its object's address
        # (partial(torch.add) as a global read a new key in every process)
        return _attribute(value).encode()
    plain = type(value).__repr__ is object.__repr__
    if plain or (dataclasses.is_dataclass(value) and not isinstance(value, type)):
        # by its attributes: a default repr holds a memory address (also for an
        # object with __slots__), a dataclass's abbreviates arrays and rounds tensors
        state = _attributes(value)
        if state is not None:
            name = f"{module}.{type(value).__qualname__}".encode()
            return name + _value_bytes(state, depth + 1)
    try:  # (never an address: a repr that holds one is keyed without it)
        return _ADDRESS.sub("", repr(value)).encode()
    except Exception:  # (a repr that raises: by its type)
        return f"<{module}.{type(value).__qualname__}>".encode()


#: a memory address in a repr (``<built-in method add of type object at 0x7f...>``)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

#: functions and methods written in C, keyed by their name (their repr holds an address)
_BUILTINS = (
    types.BuiltinFunctionType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    np.ufunc,
)


def _has(value: Any, name: str) -> bool:
    """``hasattr``, False where looking the attribute up raises anything (a
    ``__getattr__`` reading ``self._d[name]`` raised KeyError, not AttributeError)."""
    try:
        return hasattr(value, name)
    except Exception:
        return False


def _get(value: Any, name: str, default: Any = None) -> Any:
    """``getattr`` with a default, the default where looking it up raises anything."""
    try:
        return getattr(value, name, default)
    except Exception:
        return default


def _attributes(value: Any) -> dict | None:
    """An object's ``__dict__`` and ``__slots__`` values (None: it has neither); a
    dataclass's fields shown in its repr (not a ``repr=False`` memo filled per call)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.repr}
    state = dict(vars(value)) if hasattr(value, "__dict__") else None
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                state = {} if state is None else state
                state.setdefault(slot, getattr(value, slot))
    return state


_SIMPLE = (str, bytes, int, float, complex, bool, type(None), np.generic)


def module_attributes(layer: Any) -> dict:
    """A torch layer's own plain attributes (not its tensors, sublayers or mode) and its
    forward hooks (each as a function set on it), as values that key the same in
    every process, quickly.

    Numbers, strings, arrays and tensors (an input mean kept as a plain
    attribute) and containers of up to ``_SMALL`` numbers or strings count by
    their values; a ``functools.partial`` by its function and its arguments (numbers,
    strings and arrays by their values, other objects by their type); a
    function set on the layer (a ``forward`` wrapped per instance) by its code
    alone, since its closure may hold state that changes on every call (a
    counter); a torch dtype or device by its value; a builtin (``torch.relu``) or
    a class by its name; a larger
    container by its type and length, any other object by its type (a repr
    may hold a memory address, and hashing a vocabulary of a million entries
    took 3 s).
    """
    # (its own attributes, private ones too: a scale kept as self._scale changes what it
    # computes; only torch's bookkeeping of every Module is left out)
    skip = _module_bookkeeping()
    out = {
        k: _attribute(v)
        for k, v in vars(layer).items()
        if k not in skip and not k.startswith(_TORCH_MARKERS)
    }
    # its forward hooks, as functions set on it (they change what it returns)
    for kind in ("_forward_pre_hooks", "_forward_hooks"):
        hooks = getattr(layer, kind, None)
        if hooks:
            out[f"<{kind}>"] = [_attribute(h) for h in hooks.values()]
    return out


#: prefixes of the private attributes torch sets on some modules only: torch.compile's
#: wrapper keeps its own id() as _torchdynamo_wrapper_id (a key that differed in every
#: process), and the wrapped forward as _torchdynamo_orig_callable
_TORCH_MARKERS = ("_torchdynamo_",)


@functools.cache
def _module_bookkeeping() -> frozenset:
    """The attributes torch sets on every Module (its tensors, sublayers, hooks, mode)."""
    import torch  # (called on a torch layer: torch is imported already)

    return frozenset(vars(torch.nn.Module())) | {"training"}


def _attribute(v: Any) -> Any:
    """One attribute of a layer as :func:`module_attributes` keys it."""
    code = _get(_get(v, "__func__", v), "__code__")
    if isinstance(v, functools.partial):  # its function, and its arguments as values
        # or types: a hook partial(save, store) fills store on every call, and one
        # holding the module recursed through it without end
        keywords = [(k, _argument(a)) for k, a in sorted(v.keywords.items())]
        return ("partial", _attribute(v.func), [_argument(a) for a in v.args], keywords)
    if isinstance(code, types.CodeType):
        return code
    if isinstance(v, _SIMPLE) or _is_array(v) or _small_container(v):
        return v
    if type(v).__module__ == "torch" and type(v).__name__ in _TORCH_SETTINGS:
        return f"<{v}>"  # (torch.float16: by its type alone, a global DTYPE = torch.float16
        # read DTYPE = torch.float32's entries)
    name = _get(v, "__qualname__") or _get(v, "__name__")
    if isinstance(name, str):  # a builtin, a class
        return f"<{_get(v, '__module__') or ''}.{name}>"
    if isinstance(v, (tuple, list, set, frozenset, dict)):
        return f"<{type(v).__qualname__} of {len(v)}>"
    return f"<{type(v).__module__}.{type(v).__qualname__}>"


#: torch's small value types, keyed by their value (their str: torch.float16, cuda:0)
_TORCH_SETTINGS = frozenset({"dtype", "device", "layout", "memory_format", "qscheme"})


def _argument(a: Any) -> Any:
    """An argument of a layer's partial: a number, string or array by its value,
    anything else by its type."""
    if isinstance(a, _SIMPLE) or _is_array(a):
        return a
    return f"<{type(a).__module__}.{type(a).__qualname__}>"


#: the largest container of a layer's attributes keyed by its values
_SMALL = 1000


def _is_array(v: Any) -> bool:
    """A numpy array of numbers, or a torch tensor."""
    if isinstance(v, np.ndarray):
        return not v.dtype.hasobject
    if not (type(v).__module__.startswith("torch") and hasattr(v, "detach")):
        return False
    # a dense tensor with values numpy can read (a sparse, meta or quantized one,
    # e.g. a graph's adjacency, counts by its type: its .numpy() raised)
    import torch

    return v.layout == torch.strided and v.device.type != "meta" and not v.is_quantized


def _is_tensor(v: Any) -> bool:
    """A torch tensor (without importing torch)."""
    return type(v).__module__.startswith("torch") and hasattr(v, "detach")


def _bfloat16() -> Any:
    import torch  # (a tensor was given: torch is imported already)

    return torch.bfloat16


def _small_container(v: Any) -> bool:
    """A tuple, list, set or dict of at most ``_SMALL`` numbers or strings."""
    if not isinstance(v, (tuple, list, set, frozenset, dict)) or len(v) > _SMALL:
        return False  # (its length first: a global vocabulary of a million words was
        # copied into a list at every transform, 0.13 s)
    items = [*v.keys(), *v.values()] if isinstance(v, dict) else v
    return all(isinstance(x, _SIMPLE) for x in items)


#: splitmix64's constants: the golden-ratio step between positions and the finaliser's
_STEP, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
_MASK = (1 << 64) - 1


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


def _mixed_sum(words: Any, chunk: int = 1 << 16) -> int:
    """``sum_i mix(w_i + i * step) mod 2**64`` over the int64 words ``w`` (``i`` from 1).

    ``mix`` is splitmix64's finaliser (xor-shifts and multiplications), so a
    change of any words, anywhere, moves the sum by a pseudo-random amount: a
    linear sum does not see words that all change by 2**63 (a float64 tensor
    negated) or changes that cancel (+d and -d). A numpy array (CPU, in
    cache-sized chunks through two reused buffers) or a torch tensor (where it
    lives); both give the same value.
    """
    chunk = max(int(chunk), 1)
    if not isinstance(words, np.ndarray):
        return _mixed_sum_torch(words, chunk)
    words = words.view(np.uint64)
    n = min(chunk, len(words))
    steps = np.arange(1, n + 1, dtype=np.uint64) * np.uint64(_STEP)
    x, y = np.empty(n, np.uint64), np.empty(n, np.uint64)
    total = 0
    for start in range(0, len(words), chunk):
        w = words[start : start + chunk]
        a, b = x[: len(w)], y[: len(w)]
        np.add(w, steps[: len(w)], out=a)
        np.add(a, np.uint64(start * _STEP & _MASK), out=a)
        for k, c in ((30, _MIX1), (27, _MIX2)):
            np.bitwise_xor(a, np.right_shift(a, np.uint64(k), out=b), out=a)
            np.multiply(a, np.uint64(c), out=a)
        np.bitwise_xor(a, np.right_shift(a, np.uint64(31), out=b), out=a)
        total += int(a.sum(dtype=np.uint64))
    return total & _MASK


def _mixed_sum_torch(words: Any, chunk: int) -> int:
    """:func:`_mixed_sum` of an int64 tensor, on its device (logical shifts by masks)."""
    import torch

    def shift(a, k):  # torch's >> of int64 is arithmetic
        return (a >> k) & ((1 << (64 - k)) - 1)

    total = 0
    for start in range(0, len(words), chunk):
        w = words[start : start + chunk]
        index = torch.arange(start + 1, start + len(w) + 1, dtype=torch.int64, device=w.device)
        a = w + index * _signed(_STEP)
        a = (a ^ shift(a, 30)) * _signed(_MIX1)
        a = (a ^ shift(a, 27)) * _signed(_MIX2)
        a = a ^ shift(a, 31)
        total += int(a.sum())
    return total & _MASK


def tensor_digest(tensor: Any) -> bytes:
    """A cheap digest of a torch tensor's values, computed where it lives.

    Its dtype and shape, its bytes read as int64 words and summed after
    mixing each with its position (:func:`_mixed_sum`), and the last few
    bytes as they are. Cheaper than hashing the bytes (200 MB of float32
    weights on one CPU thread: about 60 ms, against 0.11 s for SHA-256), and,
    unlike a tensor's in-place version counter, it sees changes made through
    ``.data``.
    """
    import torch

    t = tensor.detach()
    if t.layout != torch.strided:  # (sparse and other layouts: by their bytes, as the key)
        return hashlib.sha256(_value_bytes(t)).digest()
    scale = ""
    if t.is_quantized:  # (its integers and scales; viewing its bytes crashed the interpreter)
        if t.qscheme() in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            scale = repr((t.q_scale(), t.q_zero_point()))
        else:
            axis = t.q_per_channel_axis()
            scale = repr(
                (t.q_per_channel_scales().tolist(), t.q_per_channel_zero_points().tolist(), axis)
            )
        t = t.int_repr()
    if t.is_complex():
        t = torch.view_as_real(t)
    t = t.contiguous().reshape(-1)
    if t.storage_offset() * t.element_size() % 8:  # (a view at an odd offset: no int64 view)
        t = t.clone()
    raw = t.view(torch.uint8)
    n_words = len(raw) // 8
    words = raw[: 8 * n_words].view(torch.int64)
    if words.device.type == "cpu":  # (numpy's integer operations are the faster ones there)
        mixed = _mixed_sum(words.numpy())
    else:
        mixed = _mixed_sum(words, chunk=1 << 22)
    tail = np.asarray(raw[8 * n_words :].cpu()).tobytes()
    head = f"{tensor.dtype}{tuple(tensor.shape)}{scale}".encode()
    return hashlib.sha256(b"|".join([head, mixed.to_bytes(8, "little"), tail])).digest()


def _code_bytes(code: types.CodeType) -> bytes:
    """A code object's instructions, constants (nested code too) and names."""
    return b"|".join([code.co_code, _value_bytes(code.co_consts), repr(code.co_names).encode()])


def callable_key(f: Any, depth: int = 0) -> str:
    """A name for the callable ``f`` in a cache key, the same in every process.

    A function: its module and qualified name and a hash of its code,
    constants and closure values (every lambda is ``<lambda>``: ``lambda x:
    10 * x`` read ``lambda x: x``'s entries) and of the globals its code reads
    (:func:`_globals_bytes`; not for a function of an installed library). A
    bound method: its function's and its object's (``Scale(1).apply`` and
    ``Scale(10).apply`` shared a key). A ``functools.partial``: its
    function's, arguments and keywords.
    Another callable: its type and :func:`_value_bytes` (attributes, or a
    torch module's layers and weights). ``depth`` bounds the recursion
    through closures and objects (a function whose closure holds itself).
    """
    if f is None:
        return "None"
    if depth > 6:
        return "<deep>"
    if isinstance(f, functools.partial):
        inner = (_value_bytes(f.args, depth + 1), _value_bytes(f.keywords, depth + 1))
        digest = hashlib.sha256(b"|".join(inner)).hexdigest()[:16]
        return f"partial({callable_key(f.func, depth + 1)}):{digest}"
    if isinstance(f, types.MethodType):
        digest = hashlib.sha256(_value_bytes(f.__self__, depth + 1)).hexdigest()[:16]
        return f"{callable_key(f.__func__, depth + 1)}@{digest}"
    code = getattr(f, "__code__", None)
    if code is None:
        digest = hashlib.sha256(_value_bytes(f, depth + 1)).hexdigest()[:16]
        return f"{type(f).__module__}.{type(f).__qualname__}:{digest}"
    parts = [
        _code_bytes(code),
        _value_bytes(getattr(f, "__defaults__", None), depth + 1),
        _value_bytes(getattr(f, "__kwdefaults__", None), depth + 1),  # (keyword-only ones)
    ]
    for cell in getattr(f, "__closure__", None) or ():
        try:
            parts.append(_value_bytes(cell.cell_contents, depth + 1))
        except ValueError:  # an empty cell
            parts.append(b"<empty>")
    parts.append(_globals_bytes(f, depth + 1))  # (SCALE = 2.0 read a SCALE = 1.0 entry)
    digest = hashlib.sha256(b"|".join(parts)).hexdigest()[:16]
    return f"{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', '?')}:{digest}"


def module_code(module: Any, depth: int = 0) -> bytes:
    """The code of a torch module's layers' classes, the same in every process.

    :func:`class_code` of every distinct class of its layers, each once.

    Parameters
    ----------
    module : torch.nn.Module
        The module; its layers' classes are read, not its tensors.
    depth : int, default=0
        The recursion depth so far (see :func:`callable_key`).

    Returns
    -------
    bytes
        The classes' code and the globals it reads.
    """
    classes = {type(layer): None for layer in module.modules()}  # (in order, once each)
    # (not __init__: what it built is keyed, as the layers' attributes and tensors;
    # keyed, a global read there and changed per process, a run id, missed every entry)
    parts = (class_code(c, depth, skip=("__init__",)) for c in classes)
    return b"classes(" + b"|".join(parts) + b")"


def class_code(klass: type, depth: int = 0, *, skip: tuple[str, ...] = ()) -> bytes:
    """A class's code, as bytes that are the same in every process.

    Its name, and for each of its own classes (itself and its bases) that is
    not installed library code, every function it defines (by
    :func:`callable_key`: code, defaults, closure values and the globals the
    code reads) and its plain class attributes (a ``SCALE`` read as
    ``self.SCALE``), as :func:`module_attributes` keys a layer's attributes.

    Parameters
    ----------
    klass : type
        The class.
    depth : int, default=0
        The recursion depth so far (see :func:`callable_key`).
    skip : tuple of str, default=()
        Names left out (a layer's ``__init__``: its state is keyed instead).

    Returns
    -------
    bytes
        Its name, and the code and class attributes of its classes outside libraries.
    """
    name = f"{klass.__module__}.{klass.__qualname__}".encode()
    if depth > 6 or _is_library(klass) or _on_stack(klass):
        return name
    parts = [name]
    with _keying(klass):
        for base in klass.__mro__:
            if _is_library(base):
                continue
            for key, v in sorted(vars(base).items()):
                if key in skip:
                    continue
                try:
                    value = _class_attribute(key, v, depth)
                except Exception:  # (an object whose attributes raise: by its type)
                    value = f"<{type(v).__module__}.{type(v).__qualname__}>".encode()
                if value is not None:
                    parts.append(f"{base.__qualname__}.{key}=".encode() + value)
    return b"class(" + b"|".join(parts) + b")"


def _class_attribute(key: str, v: Any, depth: int) -> bytes | None:
    """One attribute of a class as :func:`class_code` keys it (None: left out)."""
    if isinstance(v, (staticmethod, classmethod)):
        v = v.__func__
    elif isinstance(v, property):
        v = (v.fget, v.fset)
    if isinstance(v, tuple):
        return ",".join(callable_key(f, depth + 1) for f in v).encode()
    if isinstance(v, (types.FunctionType, functools.partial)):
        return callable_key(v, depth + 1).encode()
    if key.startswith("__") and key.endswith("__"):
        return None  # (its docstring, module name, weak references)
    return _value_bytes(_digested(_attribute(v)), depth + 1)


#: the objects (functions, classes) whose globals are being keyed, in this thread: one
#: met again (a recursive function, a forward naming its own class) is keyed by name
_KEYING = threading.local()


def _on_stack(obj: Any) -> bool:
    return any(o is obj for o in getattr(_KEYING, "stack", ()))


@contextlib.contextmanager
def _keying(obj: Any) -> Iterator[None]:
    stack = _KEYING.__dict__.setdefault("stack", [])
    stack.append(obj)
    try:
        yield
    finally:
        stack.pop()


@functools.cache
def _library_roots() -> tuple[Path, ...]:
    """The folders of installed code: the standard library and site-packages (the
    environment's, the user's and the system's: a ``pip install --user`` torch, or a
    venv's ``--system-site-packages``, was taken for the user's code)."""
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    with contextlib.suppress(Exception):  # (site may be a reduced one: a frozen app)
        roots.update(site.getsitepackages())
    with contextlib.suppress(Exception):
        roots.add(site.getusersitepackages())
    return tuple(Path(os.path.realpath(r)) for r in roots)


def _is_library(obj: Any) -> bool:
    """Whether a function or class is installed code (the standard library,
    site-packages, a builtin): its globals are not followed (torch's functions name
    torch's internals; they change with its version, which the key does not hold).
    Read from the file of its code (a class: of its first function), else from its
    module's file; code without a file (a notebook's ``__main__``) is the user's."""
    code = getattr(obj, "__code__", None)
    if isinstance(obj, type):
        functions = (v for v in vars(obj).values() if type(v) is types.FunctionType)
        code = next((f.__code__ for f in functions), None)
    if isinstance(code, types.CodeType):
        return _is_library_file(code.co_filename)
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    if file is None:
        return getattr(module, "__name__", None) in sys.builtin_module_names
    return _is_library_file(file)


@functools.lru_cache(maxsize=1024)
def _is_library_file(file: str) -> bool:
    """Whether ``file`` lies in the standard library or site-packages."""
    if file.startswith("<"):  # (<string>, <stdin>, a notebook cell's <ipython-input-1>)
        return False
    path = Path(os.path.realpath(file))
    if {"site-packages", "dist-packages"} & set(path.parts[:-1]):  # (any installed
        # package, wherever it lies: Debian's dist-packages, pip install --target)
        return True
    return any(path.is_relative_to(root) for root in _library_roots())


@functools.lru_cache(maxsize=4096)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """The names a code object (and the code nested in it: a lambda, a comprehension)
    loads as globals, sorted. (Not all of ``co_names``, which holds attribute names
    too: ``self.t`` keyed a notebook's global ``t``, a timing, so that the key
    changed at every run.)"""
    names = {
        i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")
    }
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.update(_global_names(const))
    return tuple(sorted(names))


def _globals_bytes(f: Any, depth: int) -> bytes:
    """The globals a function's code reads (its ``co_names`` found in its
    ``__globals__``), each as :func:`_global_value` keys it; nothing for a function of
    an installed library, and a function met again (recursion) by its name."""
    g = getattr(f, "__globals__", None)
    code = getattr(f, "__code__", None)
    if not isinstance(g, dict) or not isinstance(code, types.CodeType):
        return b""
    if _is_library(f):
        return b""
    if depth > 6 or _on_stack(f):
        return b"<globals>"
    with _keying(f):
        parts = [
            name.encode() + b"=" + _safe_global_value(g[name], depth)
            for name in _global_names(code)
            if name in g
        ]
    return b"globals(" + b";".join(parts) + b")"


def _safe_global_value(v: Any, depth: int) -> bytes:
    """:func:`_global_value`, or the global's type where keying it raises (an object
    whose attributes raise on being looked up: the transform crashed on its key)."""
    try:
        return _global_value(v, depth)
    except Exception:
        return f"<{type(v).__module__}.{type(v).__qualname__}>".encode()


def _digested(v: Any) -> Any:
    """A numpy array as its dtype, shape and SHA-256 of its bytes (a global or class
    attribute of 200 MB: its bytes were copied into the key, and kept in the encoder's
    per-state memo, at every transform); anything else as it is."""
    if not (isinstance(v, np.ndarray) and _is_array(v)):
        return v
    flat = np.ascontiguousarray(v).reshape(-1)
    digest = hashlib.sha256(flat.view(np.uint8) if flat.itemsize else b"").hexdigest()
    return f"<array {v.dtype.str}{v.shape} {digest}>"


def _global_value(v: Any, depth: int) -> bytes:
    """One global a function reads, cheaply and the same in every process: a module by
    its name; a function by :func:`callable_key` (a bound method: its function's,
    and its object as a global); a class by :func:`class_code`; a
    tensor by :func:`tensor_digest` (where it lives), an array by :func:`_digested`;
    numbers, strings and containers of up to ``_SMALL`` numbers or strings by their
    values; a dataclass
    or an object with the default ``repr`` by its attributes, each as
    :func:`module_attributes` keys a layer's; anything else as :func:`_attribute`
    does (a builtin by its name, a larger container by its type and length, another
    object, e.g. a torch module, by its type alone: a limitation, never its address)."""
    if isinstance(v, types.ModuleType):
        return f"<module {v.__name__}>".encode()
    if isinstance(v, types.MethodType):  # (its object as a global is, cheaply: keyed by
        # its values, a layer's vocabulary of a million entries took 3 s)
        return (
            callable_key(v.__func__, depth + 1).encode()
            + b"@"
            + _global_value(v.__self__, depth + 1)
        )
    if isinstance(v, (types.FunctionType, functools.partial)):
        return callable_key(v, depth + 1).encode()
    if isinstance(v, type):
        return class_code(v, depth + 1)
    if _is_tensor(v) and _is_array(v):
        return b"tensor" + tensor_digest(v)
    if isinstance(v, _SIMPLE) or _is_array(v) or _small_container(v):  # (plain data: no
        # cycle, at any depth; a set deeper than the bound was keyed by its repr, whose
        # order is per process)
        return _value_bytes(_digested(v))
    plain = type(v).__repr__ is object.__repr__ and not _has(v, "state_dict")
    if plain or (dataclasses.is_dataclass(v) and not isinstance(v, type)):
        state = _attributes(v)
        if state is not None:
            name = f"{type(v).__module__}.{type(v).__qualname__}".encode()
            attributes = {k: _digested(_attribute(a)) for k, a in state.items()}
            return name + _value_bytes(attributes, depth + 1)
    return _value_bytes(_attribute(v), depth + 1)


#: :func:`numerics_key` of the CPU at torch's default settings
_CPU_DEFAULTS = "device=cpu|default_dtype=torch.float32|matmul=highest|autocast=off"


def numerics_key(device: Any) -> str:
    """What else changes the numbers a torch model computes, for a cache key.

    The device (a GPU by its model name: a GPU and the CPU, or two GPU models,
    give encodings that differ in their last bits), torch's default dtype (what a
    module without floating tensors runs in), its float32 matmul precision, and on
    CUDA whether TF32 and reduced-precision reductions are allowed; and whether
    autocast is on for the device type, and its dtype.

    Parameters
    ----------
    device : torch.device or str
        Where the model runs.

    Returns
    -------
    str
        The settings, the same in every process for the same settings.
    """
    if device == "cpu" and "torch" not in sys.modules:
        # a process that has not imported torch runs it at its defaults: a cache
        # hit of a SentenceEncoder need not import it (3 s) to read its key
        return _CPU_DEFAULTS
    import torch

    device = torch.device(device)
    where = device.type
    parts = [f"default_dtype={torch.get_default_dtype()}"]
    parts.append(f"matmul={torch.get_float32_matmul_precision()}")
    if device.type == "cuda":
        where += f"({torch.cuda.get_device_name(device)})"
        matmul = torch.backends.cuda.matmul
        parts.append(
            f"tf32={matmul.allow_tf32},{torch.backends.cudnn.allow_tf32}|reduced="
            f"{matmul.allow_fp16_reduced_precision_reduction},"
            f"{matmul.allow_bf16_reduced_precision_reduction}"
        )
    parts.append(f"autocast={_autocast(torch, device.type)}")
    return "|".join([f"device={where}", *parts])


def _autocast(torch: Any, device_type: str) -> str:
    """Autocast's dtype where it is on for ``device_type`` (``off`` where it is not)."""
    try:
        on, dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    except (TypeError, AttributeError, RuntimeError):  # (torch < 2.4: per-device functions)
        if device_type == "cpu":
            on, dtype = torch.is_autocast_cpu_enabled(), torch.get_autocast_cpu_dtype()
        elif device_type == "cuda":
            on, dtype = torch.is_autocast_enabled(), torch.get_autocast_gpu_dtype()
        else:
            return "unknown"
    return str(dtype) if on else "off"


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
        if isinstance(item, str):  # (a lone surrogate: a file name that is not UTF-8)
            data = b"s" + item.encode("utf-8", "surrogatepass")
        elif _is_tensor(item) and (item.dtype == _bfloat16() or item.device.type != "cpu"):
            # (numpy has no bfloat16 and reads no GPU tensor: by its bytes, as the key)
            data = b"t" + _value_bytes(item)
        elif hasattr(item, "__array__") and not isinstance(item, (list, tuple)):
            a = np.ascontiguousarray(np.asarray(item.detach() if _is_tensor(item) else item))
            if a.dtype.hasobject:  # its bytes are pointers: key its values
                data = b"o" + f"{a.shape}".encode() + pickle.dumps(a.tolist(), protocol=4)
            else:  # (a structured dtype's str is '|V8' whatever its fields)
                dtype = a.dtype.str if a.dtype.fields is None else repr(a.dtype.descr)
                data = b"a" + f"{dtype}{a.shape}".encode() + a.tobytes()
            mask = np.ma.getmask(item)
            if mask is not np.ma.nomask and mask.any():  # (asarray drops the mask)
                data += b"m" + np.ascontiguousarray(mask).tobytes()
        elif isinstance(item, (set, frozenset)):  # (a set of strings pickles in a
            # per-process order)
            inner = sorted(pickle.dumps(x, protocol=4) for x in item)
            data = f"p{type(item).__qualname__}".encode() + pickle.dumps(inner, protocol=4)
        else:
            data = b"p" + pickle.dumps(item, protocol=4)
        return hashlib.sha256(data).hexdigest()

    def _refresh(self) -> None:
        try:  # (names only: the glob made a Path of every file at every call)
            with os.scandir(self.folder) as entries:
                names = [e.name for e in entries if e.name not in self._seen]
        except (FileNotFoundError, NotADirectoryError):
            return
        for name in names:
            if not (name.startswith("batch-") and name.endswith(".npz")):
                continue
            self._seen.add(name)
            path = self.folder / name
            try:
                # (its own handle: np.load left the file open when it was not a zip)
                with open(path, "rb") as f, np.load(f) as z:
                    entries = list(zip(z["keys"], z["values"]))
            except Exception as error:  # truncated, foreign or empty: its inputs are encoded again
                warn_user(
                    f"Skipping the unreadable cache file {path} ({type(error).__name__}: "
                    f"{error}); its inputs are encoded again.",
                    UserWarning,
                )
                continue
            for k, v in entries:
                self._index[str(k)] = v

    def lookup(self, keys: list[str]) -> list[np.ndarray | None]:
        """The encodings of ``keys`` (None where none is cached). The folder is read
        again only when a key is not known here: reading it at every call made each
        call cost time in proportion to the files (one per call that encoded
        something), and a served encoder slowed from 7 ms to 48 ms a call, cache
        hits included, over its first 6,000 one-row calls."""
        found = [self._index.get(k) for k in keys]
        if any(v is None for v in found):
            self._refresh()
            found = [self._index.get(k) for k in keys]
        return found

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
