"""What a prototype *is* for a person: raw cases, how to show them, and which row to show.

A *case* is the raw input behind a training row: a text, an image (a 2-D
grey or 3-D RGB/RGBA array), or any object. A *renderer* decides how a case
is shown; the plots and the HTML report use the same one:

- ``None`` (auto): strings are text; numeric arrays of 2 or 3 dimensions
  (``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``) are images; anything else is
  shown as its ``str``;
- ``"text"`` or ``"image"``: force one kind;
- a callable ``case -> str | ndarray``: its result is shown as text (a
  string, always escaped in HTML) or as an image (an array).

Nothing here needs matplotlib: images are encoded to PNG with ``zlib``.
"""

from __future__ import annotations

import base64
import struct
import unicodedata
import weakref
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import _num_samples

from .._chunking import chunk_slices, is_dask_frame
from .._validation import (
    check_known_labels,
    check_positive_int,
    checked_indicator,
    label_array,
    refuse_sparse_labels,
    time_labels,
)

__all__ = [
    "attach_cases",
    "case_text",
    "cases_of",
    "other_rows",
    "png_bytes",
    "png_data_uri",
    "prototype_rows",
    "rendered",
]

#: id of a tagged array -> (weak reference to it, its raw cases)
_TAGGED: dict[int, tuple[weakref.ref, Sequence | np.ndarray]] = {}


def row_labels(y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The labels of ``rows`` of ``y``: its values, or for a multi-label indicator
    each row's list of labels (not the row's number, which the gallery showed)."""
    y = np.asarray(y)
    rows = np.asarray(rows)
    if y.ndim == 1:
        return y[rows]
    out = np.empty(rows.shape, dtype=object)
    for index in np.ndindex(rows.shape):
        out[index] = np.flatnonzero(y[rows[index]] > 0).tolist()
    return out


class FrameRows(Sequence):
    """The rows of a pandas DataFrame as cases, by position: row ``r`` is
    ``{column: value}`` (read on access, so a large frame is not copied)."""

    def __init__(self, frame: Any):
        self.frame = frame

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, r):
        if isinstance(r, slice):
            return [self[i] for i in range(*r.indices(len(self)))]
        values = self.frame.iloc[int(r)].tolist()  # (numpy scalars in mixed-type frames)
        plain = [v.item() if isinstance(v, (np.number, np.bool_)) else v for v in values]
        return dict(zip(self.frame.columns, plain))


def check_training_rows(X: Any, y: Any = None, cases: Sequence | np.ndarray | None = None) -> None:
    """Raise unless ``y`` and ``cases`` (where given) hold one entry per row of ``X``
    (they are read at the rows' positions: a misaligned one failed with an IndexError)."""
    n = _num_samples(X)
    refuse_sparse_labels(y)
    for name, seq in (("y", y), ("cases", cases)):
        if seq is not None and len(seq) != n:
            raise ValueError(
                f"{name} has {len(seq)} entries for {n} training rows: pass one per "
                "training row, in order."
            )


def training_labels(estimator: Any, X: Any, y: Any) -> np.ndarray:
    """``y`` as the labels of the training rows ``X`` of ``estimator``'s classes: one
    per row, each a class of ``classes_`` (labels the model does not know read
    as misses: no representative, purity 0), or an indicator of one column per
    class (a narrower one failed with an IndexError, a wider or 3-D one was
    read silently) of 0/1 values; a multi-label model takes the indicator only."""
    y = time_labels(label_array(y), estimator.classes_)  # (Timestamps: dates, as classes_)
    check_training_rows(X, y)
    n_classes = len(estimator.classes_)
    if y.ndim == 1 and getattr(estimator, "_multilabel", False):
        # (as the report refuses such a y for its queries: the 0/1 column of one label
        # read as the labels 0 and 1, and purity counted rows without label 0 as its own)
        raise ValueError(
            f"y has shape {y.shape}; the model is multi-label: pass its indicator of shape "
            f"(n_samples, {n_classes}), a column per label."
        )
    if y.ndim == 1:
        check_known_labels(estimator.classes_, y)
    elif y.ndim != 2 or y.shape[1] != n_classes:
        raise ValueError(
            f"y must hold one label per row, or an indicator of shape (n_samples, "
            f"{n_classes}) with a column per class of classes_; got shape {y.shape}."
        )
    else:  # (read as y > 0: a NaN was no label, a 2 a label, silently)
        y = checked_indicator(y)
    return y


def positional(cases: Sequence | np.ndarray | None) -> Sequence | np.ndarray | None:
    """``cases`` indexed by position: a pandas Series or Index as a list, a
    DataFrame as its rows (:class:`FrameRows`).

    A Series indexes by label, so after ``train_test_split`` its ``[r]`` is
    not the case of row ``r`` (or is a KeyError); ``list`` of a DataFrame is
    its column names, which were taken for its rows.
    """
    if cases is not None and type(cases).__module__.startswith("pandas"):
        return FrameRows(cases) if getattr(cases, "ndim", 1) == 2 else list(cases)
    return cases


def attach_cases(X: np.ndarray, cases: Sequence | np.ndarray) -> np.ndarray:
    """Tag the feature array ``X`` with the raw inputs of its rows; returns ``X`` itself.

    A skproto estimator fitted on this very array keeps the raw cases of its
    prototypes (``prototype_cases_``), and its explanations name them. The
    encoders of :mod:`skproto.encoders` tag what they return, so in
    ``make_pipeline(SentenceEncoder(), ProtoClassifier()).fit(texts, y)`` the
    classifier knows its prototypes' texts. The tag lives as long as ``X``;
    a copy of ``X`` (e.g. by a scaler between the steps) is not tagged.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Feature array to tag.
    cases : sequence of length n_samples
        Raw input of each row (texts, images, any objects), read by position.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        ``X`` itself (the same object), now tagged.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import attach_cases, cases_of
    >>> X = attach_cases(np.array([[0.0], [1.0], [9.0], [10.0]]), ["a", "b", "c", "d"])
    >>> cases_of(X)
    ['a', 'b', 'c', 'd']
    >>> clf = NearestMeanClassifier().fit(X, [0, 0, 1, 1])
    >>> clf.explain([[9.5]], n_prototypes=1).cases  # the class mean's representative row
    array([['c']], dtype=object)
    """
    if not isinstance(X, np.ndarray) or not X.ndim:
        raise ValueError(f"attach_cases tags numpy arrays of rows, got {type(X).__name__}.")
    if not hasattr(cases, "__len__") or isinstance(cases, (str, bytes)):  # (None or a
        # number failed with "object of type 'NoneType' has no len()")
        raise ValueError(
            f"cases must be a sequence of the rows' raw inputs, got {type(cases).__name__}."
        )
    if len(cases) != len(X):
        raise ValueError(f"cases has {len(cases)} entries for {len(X)} rows.")
    key = id(X)
    _TAGGED[key] = (weakref.ref(X), positional(cases))
    weakref.finalize(X, _TAGGED.pop, key, None)
    return X


def cases_of(X: Any) -> Sequence | np.ndarray | None:
    """The raw cases ``X`` was tagged with by :func:`attach_cases`, or None.

    Parameters
    ----------
    X : object
        Usually a feature array.

    Returns
    -------
    sequence or None
        The cases (read by position), while ``X`` itself lives; None for an
        untagged object, a copy or a view.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.explain import attach_cases, cases_of
    >>> X = attach_cases(np.zeros((2, 3)), ["first", "second"])
    >>> cases_of(X), cases_of(X.copy())
    (['first', 'second'], None)
    """
    entry = _TAGGED.get(id(X))
    if entry is None or entry[0]() is not X:
        return None
    return entry[1]


_SNIPPET_CHARS = 48


def _is_image(case: Any) -> bool:
    return (
        isinstance(case, np.ndarray)
        and case.dtype.kind in "biuf"
        and (case.ndim == 2 or (case.ndim == 3 and case.shape[2] in (3, 4)))
    )


def rendered(case: Any, renderer: str | Callable | None = None) -> str | np.ndarray:
    """What to show for ``case``: a string (text) or an image array.

    Parameters
    ----------
    case : object
        A text, an image array, or any object.
    renderer : None, "text", "image" or callable, default=None
        None: an image-shaped numeric array is an image, anything else its
        ``str``; "text" and "image" force one; a callable maps the case to
        what to show (see the module docstring).

    Returns
    -------
    str or ndarray
        The text to show, or the image (an array of shape (H, W), (H, W, 3) or (H, W, 4)).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.explain import rendered
    >>> rendered("a  text"), rendered(np.zeros((8, 8))).shape, rendered(3, renderer=lambda c: c * 2)
    ('a  text', (8, 8), '6')
    """
    if callable(renderer):
        case = renderer(case)
        if isinstance(case, np.ndarray) and _is_image(case):
            return case
        return str(case)
    if renderer == "image":
        image = np.asarray(case)
        if not _is_image(image):
            raise ValueError(
                "renderer='image' needs numeric arrays of shape (H, W), (H, W, 3) or "
                f"(H, W, 4); got a case of shape {np.shape(case)}."
            )
        return image
    if renderer not in (None, "text"):
        raise ValueError(f"renderer must be None, 'text', 'image' or a callable, got {renderer!r}.")
    if renderer is None and _is_image(case):
        return case
    return case if isinstance(case, str) else str(case)


def case_text(
    case: Any, renderer: str | Callable | None = None, max_chars: int = _SNIPPET_CHARS
) -> str:
    """A one-line snippet of ``case``: its text (shortened) or ``<image HxW>``.

    Parameters
    ----------
    case : object
        A text, an image array, or any object.
    renderer : None, "text", "image" or callable, default=None
        As in :func:`rendered`.
    max_chars : int, default=48
        Longest snippet; longer text is cut and ends with an ellipsis.

    Returns
    -------
    str
        The snippet, on one line (runs of white space become one space,
        control characters such as terminal escapes are shown escaped, as
        ``\\x1b``, and an empty text is ``""``).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.explain import case_text
    >>> case_text("my card  got eaten by the atm", max_chars=16), case_text(np.zeros((8, 8)))
    ('my card got eat…', '<image 8x8>')
    """
    check_positive_int(max_chars, "max_chars")  # (0 gave a whole text, cut at -1)
    shown = rendered(case, renderer)
    if isinstance(shown, np.ndarray):
        return f"<image {shown.shape[0]}x{shown.shape[1]}>"
    text = " ".join(shown.split())
    if not text:  # (told apart from a missing case, "-", and from a blank)
        return '""'
    if any(unicodedata.category(ch) == "Cc" for ch in text):  # (an escape sequence
        # recoloured the terminal and broke the columns of str(explanation))
        text = "".join(repr(ch)[1:-1] if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Pixels as uint8: uint8 as is; booleans and floats in [0, 1] scaled by 255; an
    image of one integer value in [0, 255] at that value; else min-max scaled.

    (An all-True mask, or an int64 image of 255 everywhere, came out black: a
    constant image has no range to scale to.)
    """
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    if image.dtype == bool:
        return image.astype(np.uint8) * np.uint8(255)
    if image.dtype.kind not in "iuf":  # (complex pixels lost their imaginary part
        # silently; None read as "NaN pixels", strings failed inside numpy)
        raise ValueError(
            f"An image case must have numeric pixels (bool, int or float); got dtype {image.dtype}."
        )
    a = image.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(
            f"An image case of shape {image.shape} has NaN or infinite pixels, which "
            "cannot be drawn; pass cases with finite pixels (e.g. numpy.nan_to_num)."
        )
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if image.dtype.kind in "iu" and lo == hi and 0 <= lo <= 255:
        return np.full(image.shape, lo, dtype=np.uint8)
    if not (image.dtype.kind == "f" and lo >= 0.0 and hi <= 1.0):
        if not np.isfinite(hi - lo):  # (a range beyond float64's overflowed: NaN pixels,
            # cast silently to garbage)
            a, lo, hi = a / 2.0, lo / 2.0, hi / 2.0
        a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    return np.round(a * 255).astype(np.uint8)


def png_bytes(image: ArrayLike) -> bytes:
    """A PNG file of ``image`` ((H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA).

    uint8 pixels are kept; boolean and float pixels in [0, 1] are scaled by
    255; an image of a single integer value in [0, 255] keeps it; any other
    range is min-max scaled to [0, 255] (a constant image is then black).

    Parameters
    ----------
    image : array-like of shape (H, W), (H, W, 3) or (H, W, 4)
        Grey, RGB or RGBA pixels.

    Returns
    -------
    bytes
        The PNG file's contents (8 bits per channel).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.explain import png_bytes
    >>> png_bytes(np.eye(8))[1:4]
    b'PNG'
    """
    image = np.asarray(image)
    shape_ok = image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))
    if not shape_ok or not image.shape[0] or not image.shape[1]:  # (before the pixels:
        # an empty image failed inside numpy, None was said to have NaN pixels)
        raise ValueError(
            "An image must be (H, W), (H, W, 3) or (H, W, 4) with H, W >= 1; got "
            f"{image.shape if image.ndim else type(image.item()).__name__}."
        )
    pixels = _to_uint8(image)
    if pixels.ndim == 2:
        color = 0
    elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        color = 2 if pixels.shape[2] == 3 else 6
    else:
        raise ValueError(f"An image must be (H, W), (H, W, 3) or (H, W, 4); got {pixels.shape}.")
    height, width = pixels.shape[:2]
    raw = np.ascontiguousarray(pixels).reshape(height, -1)
    scanlines = np.hstack([np.zeros((height, 1), dtype=np.uint8), raw]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines, 6))
        + chunk(b"IEND", b"")
    )


def _thumbnail_size(shape: tuple, longest: float, least: float) -> tuple[float, float]:
    """(width, height) of an image of ``shape`` shown with its longer side ``longest``
    and neither side under ``least`` (a 1 x 64 strip stays visible, a 64 x 1 one
    stays short)."""
    h, w = int(shape[0]), int(shape[1])
    scale = longest / max(h, w, 1)
    return max(least, w * scale), max(least, h * scale)


def png_data_uri(image: ArrayLike) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes` (inline, no file, no network).

    Parameters
    ----------
    image : array-like of shape (H, W), (H, W, 3) or (H, W, 4)
        Grey, RGB or RGBA pixels.

    Returns
    -------
    str
        A data URI, usable as an HTML ``img`` element's ``src``.

    Examples
    --------
    >>> import numpy as np
    >>> from skproto.explain import png_data_uri
    >>> png_data_uri(np.eye(8)).startswith("data:image/png;base64,iVBOR")
    True
    """
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")


def prototype_rows(
    estimator: Any,
    X: ArrayLike | None = None,
    y: ArrayLike | None = None,
    *,
    neighbors: np.ndarray | None = None,
) -> np.ndarray:
    """The training row to show for each prototype (-1: none).

    A prototype that *is* a training row (``prototype_sample_indices_``) is
    shown as that row. Any other prototype (e.g. a class mean of
    :class:`~skproto.NearestMeanClassifier`) is represented, when the
    training data ``X, y`` are given, by its *representative*: the row of
    its own class that activates it most (the most similar, or nearest).

    Parameters
    ----------
    estimator : fitted skproto estimator, or a Pipeline ending in one
        The classifier whose prototypes are shown.
    X : array-like of shape (n_samples, n_features), default=None
        The training data (a Pipeline's raw inputs), in the order of the cases.
    y : array-like of shape (n_samples,) or (n_samples, n_classes), default=None
        Its labels (an indicator matrix for a multi-label model).
    neighbors : ndarray of shape (n_prototypes, m), default=None
        :func:`~skproto.metrics.prototype_neighbors` of ``X``, if already
        computed (any ``m``; 10 are computed otherwise).

    Returns
    -------
    rows : ndarray of shape (n_prototypes,)
        Training row of each prototype (its own, or its representative; -1: none).

    Examples
    --------
    >>> import numpy as np
    >>> from skproto import NearestMeanClassifier
    >>> from skproto.explain import prototype_rows
    >>> X, y = np.array([[0.0], [1.0], [9.0], [10.0]]), np.array([0, 0, 1, 1])
    >>> clf = NearestMeanClassifier().fit(X, y)
    >>> prototype_rows(clf), prototype_rows(clf, X, y)  # means are no rows; representatives
    (array([-1, -1]), array([0, 2]))
    """
    from ._steps import fitted_classifier, unpipe  # (_steps imports this module)

    estimator, _, X = unpipe(estimator, None, X)[:3]
    fitted_classifier(estimator, "prototype_rows")
    if X is not None and y is not None:
        y = training_labels(estimator, X, y)
        if not len(y):  # (prototype_neighbors said "n_neighbors must be a positive int")
            raise ValueError(
                f"Found array with 0 sample(s) (shape={np.shape(X)}) while a minimum of 1 "
                "is required by prototype_rows: pass the training rows."
            )
    return _prototype_rows_of(estimator, X, y, neighbors)


def _prototype_rows_of(estimator, X, y, neighbors, prototypes: np.ndarray | None = None):
    """:func:`prototype_rows` of the prototypes ``prototypes`` (default all;
    ``neighbors``: one row each, or None), for checked ``y``."""
    every = prototypes is None  # (all: no copy of each chunk's activations to search)
    rows = np.array(estimator._prototype_sample_indices(), dtype=np.intp)
    prototypes = np.arange(len(rows)) if every else prototypes
    rows = rows[prototypes]
    missing = np.flatnonzero(rows < 0)
    if not len(missing) or X is None or y is None:
        return rows
    from ..metrics import _neighbors_of

    labels = np.asarray(estimator.prototype_labels_)[prototypes]
    n_classes = len(estimator.classes_)
    # the 10 nearest rows nearly always hold one of the prototype's class
    if neighbors is None:
        neighbors = _neighbors_of(estimator, X, min(len(y), 10), None if every else prototypes)
    else:
        neighbors = _checked_neighbors(neighbors, len(prototypes), len(y))
    for k in missing:
        if y.ndim == 2:
            code = int(np.searchsorted(estimator.classes_, labels[k]))
            hit = y[neighbors[k], code] > 0 if code < n_classes else np.zeros(0, bool)
        else:
            hit = y[neighbors[k]] == labels[k]
        hit &= neighbors[k] >= 0  # (a -1, no neighbour, read the last row's label)
        if hit.any():
            rows[k] = neighbors[k][np.argmax(hit)]
        else:  # rare: search the whole class
            own = np.flatnonzero(
                (y[:, np.searchsorted(estimator.classes_, labels[k])] > 0)
                if y.ndim == 2
                else y == labels[k]
            )
            if len(own):
                rows[k] = own[_most_active(estimator, X, own, prototypes[k])]
    return rows


def _checked_neighbors(neighbors: Any, n_prototypes: int, n_rows: int) -> np.ndarray:
    """``neighbors`` if it is rows of the training data, a row per prototype (a
    negative entry was given out as a training row, others failed inside numpy)."""
    neighbors = np.asarray(neighbors)
    if (
        neighbors.ndim != 2
        or neighbors.shape[0] != n_prototypes
        or neighbors.dtype.kind not in "iu"
        or (neighbors.size and not (neighbors.min() >= -1 and neighbors.max() < n_rows))
    ):
        raise ValueError(
            f"neighbors must be training rows (integers in [0, {n_rows}), -1: none), one row per "
            f"prototype: shape ({n_prototypes}, m), as prototype_neighbors returns; got "
            f"shape {neighbors.shape} of {neighbors.dtype}."
        )
    return neighbors


def _most_active(estimator: Any, X: np.ndarray, own: np.ndarray, k: int) -> int:
    """Position in ``own`` of the row of ``X`` that activates prototype ``k`` most (the
    first of ties), in row chunks: ``transform`` of all the class's rows at once was
    a (class rows, n_prototypes) array of which one column was read (200,000 rows
    and 500 prototypes: 871 MB)."""
    from ..metrics import _neighbor_activation

    best, where = -np.inf, 0
    # validated once, so the rows' working dtype is chosen once for all of them
    # (per chunk, a float32 chunk could break a float64 near-tie another way)
    # (by position, a frame kept as a frame: np.asarray dropped its column names, and a
    # model fitted on a frame warned that X has no valid feature names)
    if is_dask_frame(X):  # (a dask frame's iloc takes columns only: NotImplementedError)
        X = X.compute()
    rows = X.iloc[own] if hasattr(X, "iloc") else np.asarray(X)[own]
    rows = estimator._validate_X_predict(rows)
    for s in chunk_slices(len(own), estimator._row_elements(rows.shape[1])):
        # (as prototype_neighbors ranks them: an underflowed detection by its distance)
        act = _neighbor_activation(estimator, rows[s])[:, k]
        i = int(np.argmax(act))
        if act[i] > best:
            best, where = act[i], s.start + i
    return where


def other_rows(neighbors: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """Per prototype, its first ``m`` neighbour rows other than its own row ``rows[k]``.

    Parameters
    ----------
    neighbors : ndarray of shape (n_prototypes, n_neighbors)
        Rows most activated by each prototype, most active first.
    rows : ndarray of shape (n_prototypes,)
        Each prototype's own row (-1: none).
    m : int
        Neighbour rows wanted per prototype.

    Returns
    -------
    ndarray of shape (n_prototypes, min(m, n_neighbors - 1))
        The neighbour rows (all ``n_neighbors`` of them when there is only one).
    """
    m = min(m, neighbors.shape[1] - 1) if neighbors.shape[1] > 1 else neighbors.shape[1]
    out = np.empty((len(neighbors), m), dtype=neighbors.dtype)
    for i, (near, own) in enumerate(zip(neighbors, rows)):
        out[i] = near[near != own][:m] if (near != own).sum() >= m else near[:m]
    return out
