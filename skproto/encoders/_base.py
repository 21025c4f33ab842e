"""The one template of skproto's encoders: lazy model, batching, per-input cache, feature names."""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator
from numbers import Integral
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import _check_feature_names, _check_n_features

from ..explain._cases import attach_cases
from ._cache import EncodingCache, cache_directory

__all__ = ["BaseEncoder"]

# process-wide settings held by blocks running in any thread: key -> [blocks, saved]
_HELD_LOCK = threading.Lock()
_HELD: dict = {}


@contextlib.contextmanager
def held(
    key: Any, save: Callable[[], Any], apply: Callable[[], None], restore: Callable[[Any], None]
) -> Iterator[None]:
    """A block with a process-wide setting ``key`` applied: the first block on ``key``,
    in any thread, saves it (``save()``) and applies it; the last one restores it.

    (Each block saving and restoring what it found raced in threads: one that
    started while another ran found the applied setting, restored it when it
    ended, and the process kept it for good.)
    """
    with _HELD_LOCK:
        entry = _HELD.get(key)
        if entry is None:
            entry = _HELD[key] = [0, save()]
            apply()
        entry[0] += 1
    try:
        yield
    finally:
        with _HELD_LOCK:
            entry[0] -= 1
            if not entry[0]:
                del _HELD[key]
                restore(entry[1])


def _check_width(name: str, width: int, other: int) -> None:
    """A ``ValueError`` when inputs gave encodings of different widths (numpy's
    concatenate and stack errors said nothing of the inputs)."""
    if other != width:
        raise ValueError(
            f"{name} gave encodings of {width} features for some inputs and {other} for "
            "others: inputs of different shapes must give encodings of one width."
        )


class BaseEncoder(TransformerMixin, BaseEstimator):
    """Stateless transformer from raw inputs to a float32 ``(n_samples, n_features)`` array.

    Subclasses give ``_load`` (build the model), ``_encode_block`` (encode a
    list of inputs), ``_check_inputs`` (raw ``X`` to a list, or a clear
    ``ValueError``) and ``_settings`` (what the encodings depend on, for the
    cache), and take at least the parameters ``batch_size``, ``memory`` and
    ``verbose`` (``_parameter_constraints`` holds theirs). ``fit`` only checks
    its input: nothing is learned, so ``transform`` works on an unfitted
    encoder, and a clone or an unpickled copy behaves the same. The model is
    loaded on first use, is never pickled, and is loaded again after
    unpickling.

    Examples
    --------
    An encoder of texts into their length and their number of words:

    >>> import numpy as np
    >>> from skproto.encoders import BaseEncoder
    >>> class CountEncoder(BaseEncoder):
    ...     def __init__(self, batch_size=32, memory=None, verbose=0):
    ...         self.batch_size, self.memory, self.verbose = batch_size, memory, verbose
    ...     def _load(self):
    ...         return lambda text: [len(text), len(text.split())]
    ...     def _encode_block(self, model, items):
    ...         return np.array([model(text) for text in items], dtype=np.float32)
    ...     def _check_inputs(self, X):
    ...         return [str(x) for x in X]
    ...     def _settings(self):
    ...         return "counts-v1"
    >>> CountEncoder().fit_transform(["a b c", "hello"])
    array([[5., 3.],
           [5., 1.]], dtype=float32)
    """

    #: the parameters every encoder has (subclasses add theirs to these)
    _parameter_constraints: dict = {
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "memory": [None, str, os.PathLike, HasMethods(["cache"])],
        "verbose": ["verbose"],
    }

    #: inputs encoded per progress step (a multiple of any sensible batch size)
    _BLOCK = 4096

    # ------------------------------------------------------------- hooks
    @abstractmethod
    def _load(self):
        """Build or load the model."""

    @abstractmethod
    def _encode_block(self, model, items: list) -> np.ndarray:
        """Encodings of ``items`` (a list), shape ``(len(items), n_features)``."""

    @abstractmethod
    def _check_inputs(self, X) -> list:
        """Raw inputs as a list (or a clear ``ValueError``)."""

    @abstractmethod
    def _settings(self) -> str:
        """Everything an encoding depends on, as a string (the cache key of the settings)."""

    # ------------------------------------------------------------- model
    #: parameters on which neither the model nor the width of its encodings depends
    _RUNTIME_PARAMS = frozenset({"verbose", "memory", "batch_size"})

    def _params_key(self) -> tuple:
        """The parameters the loaded model and the output width depend on (objects by
        identity): after ``set_params`` the model is loaded again."""
        simple = (str, int, float, bool, type(None))
        return tuple(
            (k, v if isinstance(v, simple) else ("object", id(v)))
            for k, v in sorted(self.get_params(deep=False).items())
            if k not in self._RUNTIME_PARAMS
        )

    def _model(self):
        key = self._params_key()
        loaded = self.__dict__.get("_loaded_model")
        if loaded is None or loaded[0] != key:
            # parameters changed since (set_params): the old model encoded the
            # new settings, and filed them in the cache under the new key
            loaded = (key, self._load())
            self.__dict__["_loaded_model"] = loaded
        return loaded[1]

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it may be the instance's __dict__
        state.pop("_loaded_model", None)  # reloaded on first use after unpickling
        state.pop("_encoding_cache", None)
        state.pop("_module_key", None)  # (a fingerprint of this process's tensors)
        return state

    # ------------------------------------------------------------- API
    def fit(self, X: Any, y: Any = None) -> BaseEncoder:
        """Check ``X``; nothing is learned (the encoder is frozen).

        The first input is kept to find the output width, should
        :meth:`get_feature_names_out` be asked before any ``transform``.

        Parameters
        ----------
        X : sequence of raw inputs
            The inputs (texts, images, ...), as ``transform`` takes them.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The encoder.
        """
        self._validate_params()
        self._check_dense(X)
        items = self._check_inputs(X)
        if not items:  # (as scikit-learn's estimators: fit_transform of no inputs said
            # "call fit, transform or fit_transform first")
            raise ValueError(f"Found 0 inputs: {type(self).__name__}.fit needs at least one input.")
        # a copy: a row of X (a view) would keep all of X alive
        self.__dict__["_fit_probe"] = copy.deepcopy(items[:1])
        if getattr(X, "ndim", None) == 2:  # rows of a 2-D array or frame: its width
            # and column names, as FunctionTransformer records them (a Pipeline
            # starting with an encoder had no n_features_in_)
            _check_n_features(self, X, reset=True)
            _check_feature_names(self, X, reset=True)
        else:
            self.__dict__.pop("n_features_in_", None)
            self.__dict__.pop("feature_names_in_", None)
        return self

    def _check_dense(self, X) -> None:
        """Refuse a sparse matrix as scikit-learn does (fit took one silently, and
        transform then failed inside torch)."""
        if sparse.issparse(X):
            raise ValueError(
                f"Sparse data was passed for {type(self).__name__}, but dense data is "
                "required. Use '.toarray()' to convert to a dense numpy array."
            )

    def transform(self, X: Any) -> np.ndarray:
        """Encode the raw inputs ``X``.

        Parameters
        ----------
        X : sequence of raw inputs, length n_samples
            The inputs (texts, images, ...) to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_features), float32
            Tagged with the raw inputs (:func:`skproto.explain.attach_cases`):
            a skproto estimator fitted on ``Z`` keeps its prototypes' inputs.
        """
        self._validate_params()
        self._check_dense(X)  # (the width is not checked: a 2-D array's rows are raw
        # inputs, token ids or signals, whose length may differ from fit's)
        items = self._check_inputs(X)
        return attach_cases(self._encode_cached(items), items)

    def _encode_cached(self, items: list) -> np.ndarray:
        """Encodings of ``items``, through the cache when ``memory`` is set."""
        n = len(items)
        cache = self._cache()
        if cache is None:
            return self._encode(items)
        keys = [cache.key(item) for item in items]
        found = cache.lookup(keys)
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            # each distinct missing input once, in first-seen order
            first = {}
            for i in missing:
                first.setdefault(keys[i], i)
            new_keys = list(first)
            values = self._encode([items[first[k]] for k in new_keys])
            cache.store(new_keys, values)
            fresh = dict(zip(new_keys, values))
            for i in missing:
                found[i] = fresh[keys[i]]
        if not n:
            return np.empty((0, self._n_features()), dtype=np.float32)
        for v in found:  # (cached encodings of inputs of other shapes, e.g. flattened)
            _check_width(type(self).__name__, len(found[0]), len(v))
        out = np.stack(found).astype(np.float32, copy=False)
        # the width, known from cache hits too (a clone whose inputs were all
        # cached could not name its features: TorchEncoder cannot probe one)
        self.__dict__["_width"] = (self._params_key(), out.shape[1])
        return out

    def _encode(self, items: list) -> np.ndarray:
        n = len(items)
        if not n:
            return np.empty((0, self._n_features()), dtype=np.float32)
        model = self._model()
        out = None
        start = time.perf_counter()
        for s in range(0, n, self._BLOCK):
            block = np.asarray(self._encode_block(model, items[s : s + self._BLOCK]))
            if out is None:
                out = np.empty((n, block.shape[1]), dtype=np.float32)
            _check_width(type(self).__name__, out.shape[1], block.shape[1])
            out[s : s + len(block)] = block
            self.__dict__["_width"] = (self._params_key(), block.shape[1])
            if self.verbose:
                done = min(n, s + self._BLOCK)
                print(
                    f"[{type(self).__name__}] encoded {done}/{n} inputs "
                    f"({time.perf_counter() - start:.1f}s)",
                    flush=True,
                )
        return out

    def _cache(self) -> EncodingCache | None:
        directory = cache_directory(self.memory)
        if directory is None:
            return None
        cached = self.__dict__.get("_encoding_cache")
        settings = self._settings()
        if cached is None or cached[0] != (directory, settings):
            cached = ((directory, settings), EncodingCache(directory, settings))
            self.__dict__["_encoding_cache"] = cached
        return cached[1]

    def _n_features(self) -> int:
        """The output width: as last encoded, else from encoding the probe inputs."""
        key = self._params_key()
        known = self.__dict__.get("_width")
        if known is None or known[0] != key:
            known = (key, int(self._encode_block(self._model(), self._probe_inputs()).shape[1]))
            self.__dict__["_width"] = known
        return known[1]

    def _probe_inputs(self) -> list:
        """Inputs to encode when only the output width is needed."""
        return ["a"]

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """``<classname>0``, ``<classname>1``, ...: one name per output dimension.

        Loads the model: the width is the model's, known once an input has been
        encoded (the first input ``fit`` saw, if ``transform`` has not run).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the names do not depend on the inputs.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output dimension.
        """
        prefix = type(self).__name__.lower()
        return np.array([f"{prefix}{i}" for i in range(self._n_features())], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.transformer_tags.preserves_dtype = []  # (float32 codes, whatever the input)
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.non_deterministic = False
        return tags
