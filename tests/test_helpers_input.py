"""Bad input to skproto's public helpers (not the estimators' own methods): a clear
ValueError naming what is wrong, never a deep IndexError, AttributeError or a
silently wrong result. From an audit of the helpers; each test failed before."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from skproto import NearestMeanClassifier, RBFPrototypeClassifier, certified_accuracy

X, y = load_iris(return_X_y=True)


@pytest.fixture(scope="module")
def nm():
    return NearestMeanClassifier().fit(X, y)


@pytest.fixture(scope="module")
def logreg():
    return LogisticRegression(max_iter=1000).fit(X, y)


def test_certified_accuracy_requires_y():
    """certified_accuracy(est, X, None, eps) certified the predictions: misclassified
    rows counted (0.96 where the accuracy is 0.9467)."""
    rbf = RBFPrototypeClassifier(max_epochs=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="needs y, the true labels"):
        certified_accuracy(rbf, X, None, 0.1)


# 2. prototype_purity: an indicator y of the wrong width / ndim
@pytest.mark.parametrize(
    "Y",
    [np.eye(3)[y][:, :2], np.c_[np.eye(3)[y], np.zeros(150)], np.eye(3)[y][:, :, None]],
    ids=["2cols", "4cols", "3d"],
)
def test_prototype_purity_indicator_shape_checked(nm, Y):
    from skproto.metrics import prototype_purity

    with pytest.raises(ValueError, match="y"):
        prototype_purity(nm, X, Y)


# 3. explain helpers and displays given a non-skproto estimator: AttributeError
def _calls(est):
    import matplotlib

    matplotlib.use("Agg")
    from skproto.explain import (
        EmbeddingDisplay,
        ExplanationDisplay,
        PrototypeGalleryDisplay,
        explain_with_runner_up,
        make_report,
        prototype_rows,
    )

    return {
        "make_report": lambda: make_report(est, X[:5]),
        "explain_with_runner_up": lambda: explain_with_runner_up(est, X[:5]),
        "prototype_rows": lambda: prototype_rows(est, X, y),
        "ExplanationDisplay": lambda: ExplanationDisplay.from_estimator(est, X[:3]),
        "PrototypeGalleryDisplay": lambda: PrototypeGalleryDisplay.from_estimator(est, X, y),
        "EmbeddingDisplay": lambda: EmbeddingDisplay.from_estimator(est, X, y),
    }


@pytest.mark.parametrize(
    "name",
    [
        "make_report",
        "explain_with_runner_up",
        "prototype_rows",
        "ExplanationDisplay",
        "PrototypeGalleryDisplay",
        "EmbeddingDisplay",
    ],
)
def test_explain_helpers_refuse_non_skproto_estimator(logreg, name):
    with pytest.raises(ValueError, match=f"{name} explains a skproto classifier"):
        _calls(logreg)[name]()


# 4. labels that are not the estimator's classes: prototype_purity raises, the
# gallery and prototype_rows silently report purity 0 / no representative
@pytest.mark.parametrize("bad", [y + 9, y.astype(str)], ids=["unknown", "str-vs-int"])
def test_gallery_and_prototype_rows_check_labels(nm, bad):
    import matplotlib

    matplotlib.use("Agg")
    from skproto.explain import PrototypeGalleryDisplay, prototype_rows

    with pytest.raises(ValueError):
        prototype_rows(nm, X, bad)
    with pytest.raises(ValueError):
        PrototypeGalleryDisplay.from_estimator(nm, X, bad)


# 5. prototype_rows' neighbors are not checked
@pytest.mark.parametrize(
    "neighbors",
    [np.full((3, 3), -5), np.full((3, 3), 1000), np.zeros((2, 3), int), np.zeros((3, 3))],
    ids=["negative", "out-of-range", "too-few-rows", "float"],
)
def test_prototype_rows_checks_neighbors(nm, neighbors):
    from skproto.explain import prototype_rows

    with pytest.raises(ValueError, match="neighbors"):
        prototype_rows(nm, X, y, neighbors=neighbors)


# 6. prototype_rows on empty X blames a parameter the caller never passed
def test_prototype_rows_empty_X_message(nm):
    from skproto.explain import prototype_rows

    with pytest.raises(ValueError) as info:
        prototype_rows(nm, X[:0], y[:0])
    assert "n_neighbors" not in str(info.value)


# 7. PrototypeGalleryDisplay.max_classes is not validated
@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_gallery_max_classes_validated(nm, k):
    import matplotlib

    matplotlib.use("Agg")
    from skproto.explain import PrototypeGalleryDisplay

    with pytest.raises(ValueError, match="max_classes"):
        PrototypeGalleryDisplay.from_estimator(nm, X, y, max_classes=k)


# 8. EmbeddingDisplay.max_points is not validated
@pytest.mark.parametrize("k", [0, -1, 2.5, True, None])
def test_embedding_max_points_validated(nm, k):
    import matplotlib

    matplotlib.use("Agg")
    from skproto.explain import EmbeddingDisplay

    with pytest.raises(ValueError, match="max_points"):
        EmbeddingDisplay.from_estimator(nm, X, y, max_points=k)


# 9. Explanation.with_cases takes a 2-D prototype_rows; the copy then breaks
def test_with_cases_prototype_rows_must_be_1d(nm):
    e = nm.explain(X[:2], n_prototypes=2)
    cases = [f"c{i}" for i in range(150)]
    with pytest.raises(ValueError, match="prototype_rows"):
        e.with_cases(cases, prototype_rows=[[0, 1], [60, 61], [120, 121]])


# 10. make_report with an indicator y for a single-label model: numpy's broadcast error
def test_make_report_indicator_y_for_single_label_model(nm):
    from skproto.explain import make_report

    with pytest.raises(ValueError, match="^y "):
        make_report(nm, X[:5], np.eye(3)[y[:5]])


def test_torch_encoder_takes_2d_inputs_of_another_length_than_fit():
    """Rows of a 2-D array are TorchEncoder's raw inputs (token ids, signals); their
    length is not a feature count the module fixes: an EmbeddingBag, or a
    preprocess that resamples, takes any length. (A width check in transform,
    added for the helpers audit, refused them: a review; FunctionTransformer
    does not check it either.)"""
    from skproto.encoders import TorchEncoder

    torch.manual_seed(0)
    bag = torch.nn.EmbeddingBag(50, 4, mode="mean")
    enc = TorchEncoder(bag).fit(np.array([[1, 2, 3, 0, 0]] * 3))
    assert enc.transform(np.array([[4, 5, 6, 7, 8, 9, 1]] * 2)).shape == (2, 4)

    def resample(s):
        grid = np.linspace(0, 1, 16)
        return np.interp(grid, np.linspace(0, 1, len(s)), s).astype(np.float32)

    rng = np.random.default_rng(0)
    enc = TorchEncoder(torch.nn.Linear(16, 2), preprocess=resample).fit(rng.random((3, 100)))
    assert enc.transform(rng.random((2, 250))).shape == (2, 2)


# 12. TorchEncoder of a module that returns a tuple: AttributeError from inside
def test_torch_encoder_module_output_not_tensor():
    from skproto.encoders import TorchEncoder

    enc = TorchEncoder(torch.nn.LSTM(4, 2, batch_first=True))
    with pytest.raises((ValueError, TypeError), match="module"):
        enc.fit_transform(X[:3, None, :])


# 13. pack_tokens: a mask of the wrong shape is reshaped (scrambled) or fails inside numpy
def test_pack_tokens_checks_mask_shape():
    from skproto.encoders import pack_tokens

    E = np.arange(24.0).reshape(2, 3, 4)
    M = np.array([[1, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match="mask"):
        pack_tokens(E, M.T)  # (3, 2) for (2, 3) slots: silently scrambled
    with pytest.raises(ValueError, match="mask"):
        pack_tokens(E, M[:, :2])
    with pytest.raises(ValueError, match="embeddings"):
        pack_tokens(E[:, 0], M)


# 14. dask input of sparse blocks: deep errors, where fit gives skproto's message
def test_parallel_fits_refuse_sparse_blocks():
    import dask.array as da
    from scipy import sparse

    from skproto import ProtoClassifier
    from skproto.parallel import fit_nearest_mean, fit_streaming

    Xs = da.from_array(sparse.csr_matrix(X), chunks=50, asarray=False)
    yd = da.from_array(y, chunks=50)
    with pytest.raises(ValueError, match="sparse"):
        fit_nearest_mean(NearestMeanClassifier(), Xs, yd)
    with pytest.raises(ValueError, match="sparse"):
        fit_streaming(ProtoClassifier(max_epochs=1, random_state=0), Xs, yd)


# 15. ParallelPostFit.explain(rows=<int>): deep TypeError (dask) or a 1-D-array error (numpy)
def test_parallel_post_fit_explain_scalar_row(nm):
    import dask.array as da

    from skproto.parallel import ParallelPostFit

    pp = ParallelPostFit(nm)
    for Xin in (X, da.from_array(X, chunks=50)):
        try:
            assert len(pp.explain(Xin, rows=5)) == 1
        except ValueError as exc:
            assert "rows" in str(exc)


# 16. png_bytes of an empty image: numpy's reshape error
def test_png_bytes_empty_image():
    from skproto.explain import png_bytes

    with pytest.raises(ValueError, match="image"):
        png_bytes(np.zeros((0, 4)))


# 17. public geometry kernels: out-of-range parameters give NaN / out-of-contract values
@pytest.mark.parametrize(
    "call",
    [
        lambda: __import__("skproto.geometry", fromlist=["x"]).rbf_similarity(
            np.array([0.0, 1.0]), 0.0
        ),
        lambda: __import__("skproto.geometry", fromlist=["x"]).rbf_similarity(
            np.array([0.0, 1.0]), -1.0
        ),
        lambda: __import__("skproto.geometry", fromlist=["x"]).log_similarity(
            np.array([0.0, 1.0]), -1.0
        ),
        lambda: __import__("skproto.geometry", fromlist=["x"]).shrunk_covariance(np.eye(2), 2.0),
    ],
    ids=["rbf-width-0", "rbf-width-neg", "log-eps-neg", "shrunk-amount-2"],
)
def test_geometry_parameters_validated(call):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError):
            call()


def test_oas_shrinkage_of_an_isotropic_covariance_stays_in_range():
    """OAS divides by (n + 1)(mean(S^2) - mu^2 / p), zero for S = mu I: rounded below
    zero, it returned an amount of about -1e15 (3 x 3, mu = 0.4325), which scaled
    S's rounding noise by that much. Found when shrunk_covariance began to refuse
    amounts outside [0, 1]: a stream's per-class covariance of a square grid of
    rows gave -2.5e14."""
    from skproto.geometry import shrinkage_amount, shrunk_covariance

    S = np.eye(3) * 0.43249719552409716
    amount = shrinkage_amount("oas", S, 50, None)
    assert 0.0 <= amount <= 1.0
    np.testing.assert_allclose(shrunk_covariance(S, amount), S, rtol=1e-15)


def test_prototype_rows_fallback_decides_float32_once_for_the_class_rows():
    """prototype_rows' fallback (no row of a mean's class among its 10 nearest)
    must pick the row transform(X[own]) ranks first: the float32/float64 choice is
    made once for all of the class's rows, not chunk by chunk."""
    from skproto import NearestMeanClassifier
    from skproto.explain._cases import prototype_rows

    d = 2048  # a chunk of 2,048 rows
    a = np.float32(1 - 2**-24)
    v = np.nextafter(np.float32(np.sqrt(2.0**-23)), np.float32(1))
    near = np.zeros((2, d))
    near[0, :2] = a, v  # |x|^2 = 1 + 2e-14: ties with row 2 in float32 only
    near[1, 0] = 1.0
    fill = 2 * np.eye(d)[2:1100]
    far = np.zeros((1, d))
    far[0, 1] = 2e15  # > _FLOAT32_RANGE: the class's rows are computed in float64
    A = np.vstack([near[:1], -near[:1], near[1:], -near[1:], fill, -fill, far, -far])
    X = np.vstack([A, np.zeros((20, d))]).astype(np.float32)  # class 1 sits on class 0's mean
    y = np.array([0] * len(A) + [1] * 20)
    clf = NearestMeanClassifier(temperature=1.0).fit(X, y)
    own = np.flatnonzero(y == 0)
    expected = own[int(np.argmin(clf.transform(X[own])[:, 0]))]
    assert expected == 2
    assert prototype_rows(clf, X, y)[0] == expected


def test_a_missing_neighbour_is_not_read_as_the_last_row():
    """prototype_rows read a -1 neighbour (none) as y[-1]: where the last row was
    of the prototype's class it gave -1, no row, though the class has rows."""
    from skproto.explain._cases import prototype_rows
    from skproto.metrics import prototype_neighbors

    nm = NearestMeanClassifier().fit(X, y)
    neighbors = prototype_neighbors(nm, X, n_neighbors=5)
    neighbors[2] = -1  # class 2 (the last row's class) has no neighbour listed
    rows = prototype_rows(nm, X, y, neighbors=neighbors)
    assert rows[2] >= 0 and y[rows[2]] == 2
