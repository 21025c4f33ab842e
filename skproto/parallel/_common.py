"""Shared pieces of skproto.parallel: dask inputs as row-blocked arrays, tree reductions."""

from __future__ import annotations

import numpy as np
from sklearn.exceptions import DataConversionWarning

from .. import _validation
from .._chunking import is_dask, is_dask_frame


def dask_array():
    """The ``dask.array`` module, with a hint to install it if it is missing.

    Returns
    -------
    module
        ``dask.array``.
    """
    try:
        import dask.array as da
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("skproto.parallel needs dask: pip install 'skproto[dask]'.") from exc
    return da


def _numpy_dtype(dtype, *, features: bool = True):
    """The numpy dtype a pandas extension ``dtype`` is read as (None: numpy already),
    as scikit-learn reads it in memory: nullable numbers and booleans as float64
    (a missing value NaN, refused by the validation), categories as their
    categories' dtype (features of numeric categories, and boolean ones, as
    float64, where a missing one is NaN: as ints it failed pandas' cast),
    anything else (strings) as object."""
    if isinstance(dtype, np.dtype):
        return None
    subtype = getattr(dtype, "subtype", None)
    if not features and _is_sparse_dtype(dtype) and isinstance(subtype, np.dtype):
        # sparse labels are read densely, as fit reads them: booleans as float64 (as
        # scikit-learn reads them), others as their values (no numpy_dtype: object)
        return np.dtype(np.float64) if subtype.kind == "b" else subtype
    categories = getattr(dtype, "categories", None)
    if categories is not None and isinstance(categories.dtype, np.dtype):
        numeric = categories.dtype.kind in "biuf"
        if (features and numeric) or categories.dtype.kind == "b":
            return np.dtype(np.float64)  # (labels too: scikit-learn reads bools so)
        return categories.dtype
    numpy = getattr(dtype, "numpy_dtype", None)
    if isinstance(numpy, np.dtype) and numpy.kind in "biuf":
        return np.dtype(np.float64)
    return np.dtype(object)


def frame_to_array(frame, *, features: bool = True):
    """A dask DataFrame or Series as a dask array of numpy dtypes.

    pandas' extension dtypes are cast first (:func:`_numpy_dtype`), as an
    in-memory fit reads them: dask turned strings into object with a warning
    (silencing it swapped the process's warning filters, unsafe in threads),
    and a nullable Int64, boolean or categorical Series of labels came out
    as an object array of unknown label type, refused where ``fit`` takes it.

    Parameters
    ----------
    frame : dask DataFrame or Series
        The frame.
    features : bool, default=True
        Whether it holds features rather than labels or weights (see
        :func:`_numpy_dtype`).

    Returns
    -------
    dask array
        Its values (row block lengths may be unknown).
    """
    if hasattr(frame, "dtypes") and not hasattr(frame, "dtype"):  # a DataFrame
        cast = {c: _numpy_dtype(t, features=features) for c, t in frame.dtypes.items()}
        cast = {c: t for c, t in cast.items() if t is not None}
        if cast:
            frame = frame.astype(cast)
    else:
        cat = getattr(frame, "cat", None) if str(frame.dtype) == "category" else None
        if cat is not None and not cat.known and not features:
            # labels of categories dask does not know (read_csv's): learn them (one
            # pass over the labels), else they were cast to object, "Unknown label
            # type" where fit takes them. Partition by partition: cat.as_known()
            # shuffles, which failed on a synchronous scheduler beside a client
            import dask

            parts = dask.compute(*[_categories(p) for p in frame.to_delayed()])
            frame = cat.set_categories(np.unique(np.concatenate(parts)))
        cast = _numpy_dtype(frame.dtype, features=features)
        if cast is not None and cast.kind in "biu":  # (labels of integer categories)
            frame = frame.map_partitions(_cast_labels, cast, meta=frame._meta.astype(cast))
        elif cast is not None:
            frame = frame.astype(cast)
    meta = frame._meta
    if object in (list(meta.dtypes) if meta.ndim == 2 else [meta.dtype]):
        # each partition's values, not to_dask_array: dask-expr 1.x (dask < 2025.1)
        # converts through a legacy frame, which turned object columns back into
        # pyarrow strings (dataframe.convert-string) and warned converting them
        return frame.map_partitions(_to_numpy, meta=meta.to_numpy())
    return frame.to_dask_array()


def _to_numpy(part):
    """A partition's values (of object dtype)."""
    return part.to_numpy()


def _categories(part):
    """The categories of a partition of a categorical Series (delayed)."""
    import dask

    return dask.delayed(lambda s: s.cat.categories.to_numpy())(part)


def _cast_labels(part, dtype):
    """A partition of labels cast to ``dtype``, which holds no missing value: one
    is refused by name (pandas' cast said "Cannot convert float NaN to integer")."""
    if part.isna().any():
        raise ValueError(
            "Input y contains NaN (a missing label); drop those rows or give them a label."
        )
    return part.astype(dtype)


def column_names(X) -> np.ndarray | None:
    """A dask DataFrame's column names when all are strings (as scikit-learn keeps them).

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    ndarray of shape (n_features,) or None
        The names (object dtype); None for anything but a dask DataFrame of string names.

    Raises
    ------
    TypeError
        For names that mix strings and other types, as scikit-learn raises for
        such a pandas frame (they were dropped silently).
    """
    if not is_dask_frame(X) or X.ndim != 2:
        return None
    from sklearn.utils.validation import _get_feature_names

    # the frame's empty pandas meta-frame, read as scikit-learn reads a frame
    return _get_feature_names(X._meta)


def column_dtypes(X) -> list | None:
    """The dtype of each column of a dask DataFrame as :func:`frame_to_array` reads it
    (pandas' extension dtypes cast as there); None for anything else.

    Parameters
    ----------
    X : object
        Anything.

    Returns
    -------
    list of dtype or None
        One dtype per column; None for anything but a dask DataFrame.
    """
    if not is_dask_frame(X) or X.ndim != 2:
        return None
    return [_numpy_dtype(t) or t for t in X.dtypes]


def as_row_blocks(X, *, known: bool = True):
    """``X`` (dask array or DataFrame, or array-like) as a 2-D dask array of whole rows.

    Parameters
    ----------
    X : dask array, dask DataFrame or array-like
        Rows.
    known : bool, default=True
        Compute unknown block lengths (a dask DataFrame's), so rows have
        global indices.

    Returns
    -------
    dask array of shape (n_rows, n_features)
        ``X`` with one column block.
    """
    da = dask_array()
    if is_dask_frame(X):
        X = frame_to_array(X)
    elif not is_dask(X):
        X = np.asarray(X)
        X = da.from_array(X, chunks=(max(1, len(X)),) + X.shape[1:])
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array, got {X.ndim} dimensions.")
    if known and any(np.isnan(c) for c in X.chunks[0]):
        X = X.compute_chunk_sizes()
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X


def refuse_sparse_blocks(X, estimator) -> None:
    """Raise, as ``fit`` does in memory, for a dask array of sparse blocks (the fits
    failed inside: "sparse array length is ambiguous", "setting an array element
    with a sequence")."""
    from scipy import sparse

    if sparse.issparse(getattr(X, "_meta", None)):
        raise ValueError(
            f"{type(estimator).__name__} does not support sparse input; got a dask array "
            "of sparse blocks. Convert its blocks to dense arrays (X.map_blocks(lambda b: "
            "b.toarray())) if they fit in memory."
        )


def aligned(a, X, name: str, *, broadcast: bool = False):
    """``a`` (dask or array-like, one value per row of ``X``) in ``X``'s row blocks.

    Parameters
    ----------
    a : dask array, dask DataFrame or Series, or array-like
        One value (or row) per row of ``X``.
    X : dask array
        Rows, with known block lengths.
    name : str
        Name of ``a`` in the error raised on a row count mismatch.
    broadcast : bool, default=False
        Take a scalar ``a`` as that value for every row (a sample weight:
        else ``a`` must be 1-D).

    Returns
    -------
    dask array
        ``a`` chunked along its first axis as ``X``'s rows.
    """
    da = dask_array()
    if a is None:  # (read a.chunks of a 0-d array: IndexError)
        raise ValueError(f"{name} is required: one value per row of X, got None.")
    if is_dask_frame(a):
        a = frame_to_array(a, features=False)
    if not is_dask(a):
        a = np.asarray(_pandas_values(a))
        if a.ndim == 0 and broadcast:  # one value for every row (a weight, as fit takes)
            a = np.full(X.shape[0], a, dtype=np.result_type(a, np.float64))
        a = da.from_array(a, chunks=-1)
    if a.ndim == 0:
        raise ValueError(f"{name} must hold one value per row of X, got a scalar.")
    if broadcast and a.ndim != 1:  # (dask's "Provided chunks have 2 dims" came later)
        raise ValueError(f"{name} must be a 1D array or a scalar, got shape {a.shape}.")
    if any(np.isnan(c) for axis in a.chunks for c in axis):  # (any axis: all are rechunked)
        a = a.compute_chunk_sizes()
    if a.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {a.shape[0]} rows for {X.shape[0]} samples.")
    # (and whole rows: a 2-D indicator chunked by columns gave a row block several
    # blocks, which were paired with the wrong blocks of X)
    return a.rechunk({0: X.chunks[0], **dict.fromkeys(range(1, a.ndim), -1)})


def _pandas_values(a):
    """An in-memory pandas Series or DataFrame of labels or weights, its extension
    dtypes cast as :func:`frame_to_array` casts a dask one's (and as ``fit`` reads
    them): np.asarray kept a nullable Int64 or boolean Series as int64 or bool,
    where ``fit`` (and a dask Series) gives the classes float64."""
    if not hasattr(a, "dtypes") or not hasattr(a, "to_numpy") or is_dask_frame(a):
        return a
    if getattr(a, "ndim", 0) == 1:
        cast = _numpy_dtype(a.dtype, features=False)
        if cast is None:
            return a
        return _cast_labels(a, cast) if cast.kind in "biu" else a.astype(cast)
    cast = {c: _numpy_dtype(t, features=False) for c, t in a.dtypes.items()}
    cast = {c: t for c, t in cast.items() if t is not None}
    return a.astype(cast) if cast else a


def _is_sparse_dtype(dtype) -> bool:
    """Whether ``dtype`` is pandas' SparseDtype: it has no ``numpy_dtype``, and a
    sparse Series of int labels was read as object ("Unknown label type") where
    ``fit`` reads it as its values (and sparse booleans as float64)."""
    return type(dtype).__name__ == "SparseDtype" and hasattr(dtype, "subtype")


def _distinct(block: np.ndarray) -> np.ndarray:
    _validation.check_one_label_kind(block)
    return np.unique(block)


def labels_of(y) -> np.ndarray:
    """The sorted distinct labels of a dask array, computed block by block.

    Parameters
    ----------
    y : dask array of shape (n_samples,)
        Labels.

    Returns
    -------
    ndarray
        The sorted distinct labels.
    """
    import dask

    blocks = list(y.to_delayed().ravel())
    parts = dask.compute(*[dask.delayed(_distinct)(b) for b in blocks])
    if y.dtype != object:
        return _distinct(np.concatenate(parts))
    # each block was checked alone: concatenated, the ints of one block and the
    # strings (or booleans) of another became one dtype, and the labels '0',
    # '1', 'a' (or True as 1) were trained on without a word
    labels = np.concatenate([np.asarray(part, dtype=object) for part in parts])
    _validation.check_one_label_kind(labels)
    if len({isinstance(v, (bool, np.bool_)) for v in labels}) > 1:
        raise ValueError(
            "Mix of label types (booleans and numbers) in y; use one type for all labels."
        )
    return _distinct(np.concatenate(parts))  # (the blocks' own dtype, as before)


def tree(items: list, combine, fan_in: int = 8):
    """Reduce delayed ``items`` with ``combine`` (a delayed function of a list) in a tree.

    Parameters
    ----------
    items : list
        Delayed values (at least one).
    combine : callable
        Delayed function of a list of up to ``fan_in`` values, returning one.
    fan_in : int, default=8
        Values combined at a time.

    Returns
    -------
    object
        The delayed result of the reduction.
    """
    while len(items) > 1:
        items = [combine(items[i : i + fan_in]) for i in range(0, len(items), fan_in)]
    return items[0]


def raveled_column(y):
    """A column-vector dask ``y`` as 1-D, with scikit-learn's DataConversionWarning
    raised once, at the user's call (validated per block, it was raised once per
    block, from inside scikit-learn); any other ``y`` as it is."""
    if y.ndim == 2 and y.shape[1] == 1:  # one label per row, as fit takes it
        _validation.warn_user(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples, ), for example using ravel().",
            DataConversionWarning,
        )
        y = y[:, 0]
    return y
