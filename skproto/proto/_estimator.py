"""ProtoClassifier: learned prototypes that are real training cases."""

from __future__ import annotations

import copy
from dataclasses import replace
from numbers import Integral, Real
from types import MappingProxyType

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_is_fitted

from .. import _validation
from .._base import as_fitted, partial_fit_context, unchanged_on_failure, underflow_order
from .._chunking import CHUNK_ELEMENTS, chunk_slices, prototype_row_elements, take_rows
from .._tokens import check_token_layout, token_dim, unpack_tokens
from .._torch.estimator import TorchPrototypeClassifier, counted_rows, state_tensors
from .._torch.training import (
    cpu_default,
    data_scale,
    in_units,
    new_history,
    squared_distances_to_others,
    to_tensor,
    torch_threads,
    train,
    training_centre,
    training_context,
)
from .._validation import (
    FLOAT32_MAX,
    FLOAT32_MAX_ABS,
    FLOAT32_MAX_TEMPERATURE,
    FLOAT32_MIN_TEMPERATURE,
    FLOAT32_RESOLUTION,
    FLOAT32_TINY,
)
from ..explain._explanation import Explanation
from ..geometry import (
    min_squared_distances,
    normalize_rows,
    principal_axes,
    squared_distances,
)
from ..geometry._array import row_sqnorms
from ..heads import LinearHead, MixtureHead
from ..losses import (
    classification_loss,
    cluster_cost,
    latent_drift,
    separation_cost,
    st_protopnet_loss,
    weighted_mean,
)
from ..prototypes import classwise_kmeans, project_onto_rows
from ..prototypes.replay import (
    average_class_weight,
    class_moments,
    gaussian_replay,
    merge_moments,
    reindex_moments,
)
from ._last_layer import refit_last_layer
from ._network import (
    ProtoNetwork,
    has_input_units,
    has_latent_offset,
    make_latent_map,
    with_input_units,
    with_latent_offset,
)

__all__ = ["PROTOPNET", "ProtoClassifier"]

#: A ``partial_fit`` call that brings new classes trains the map at this
#: fraction of ``learning_rate``, with a penalty of this weight on the change
#: of the latent rows (``losses.latent_drift``): the earlier classes, seen only
#: through their stored cases, keep their rows where their prototypes expect
#: them. Chosen on CLINC150's validation split (75 classes, then 75 more:
#: 0.929 without, 0.940 with).
_INCREMENTAL_LR = 0.5
_DRIFT_WEIGHT = 1.0
#: Gaussian draws per earlier class replayed when new classes arrive (chosen
#: on CLINC150's validation split, three splits of 75 + 75 classes: mean
#: accuracy 0.936 with the stored cases only, 0.940 with 20 draws, 0.941 with 50)
_REPLAY_ROWS = 50
#: The mixture head's parameters, not trained by a partial_fit call that brings
#: new classes: on CLINC150's validation split (75 classes fitted, then the
#: other 75 one per call) the log-loss grew to 0.43-0.44 with them trained
#: (scale inflated by the replayed cases) and stays at 0.25-0.28 without them,
#: accuracy 0.933-0.940 against 0.928-0.935; 75 + 75 in one call is unchanged
#: (0.942-0.944, log-loss 0.22).
_HEAD_PARAMETERS = frozenset({"head.log_tau", "head.log_scale", "head.bias"})

#: ``projection_dim="auto"``: the linear map's largest output size (the
#: width of common sentence embeddings). On CLINC150 lifted to 2048-d (a
#: random orthonormal map plus noise) the square map took 89 s for 0.950
#: val, a 384-d map from the principal axes 25 s for 0.948 (256: 21 s,
#: 0.950; 128: 20 s, 0.951). On CLINC150's own 384-d rows a 128-d map read
#: the same val accuracy in 4.1 s against 7.2 s, but learned new classes
#: worse (75 intents, then 75 more by partial_fit: 0.3-0.5 point lower
#: on val), so narrower inputs keep the square map.
AUTO_PROJECTION_DIM = 384

#: ProtoPNet's objective and dense class-connection layer on the input space,
#: the configuration before the mixture head: ``ProtoClassifier(**PROTOPNET)``
#: (the cost weights are those of Chen et al., 2019, and of ST-ProtoPNet).
PROTOPNET = MappingProxyType(
    {
        "head": "linear",
        "projection": None,
        "similarity": "log",
        "temperature": 1.0,
        "cluster_weight": 0.8,
        "separation_weight": 0.08,
        "closeness_weight": 1.0,
        "discrimination_weight": 1.0,
        "snap_weight": 0.0,
        "input_noise": 0.0,
    }
)


def _nearest_of_another_class(
    Z: np.ndarray, P: np.ndarray, T: np.ndarray, codes: np.ndarray
) -> np.ndarray:
    """Squared distance of each row of ``Z`` (labels ``T``: codes, or a 0/1 indicator)
    to its nearest row of ``P`` whose class (``codes``) is not one of the row's
    (``inf`` for none), in row chunks."""
    out = np.full(len(Z), np.inf)
    if not len(P):
        return out
    center = P.mean(axis=0)
    for s in chunk_slices(len(Z), max(len(P), Z.shape[1])):
        sq = squared_distances(Z[s], P, center=center)
        own = T[s][:, codes] > 0 if T.ndim == 2 else T[s, None] == codes[None, :]
        sq[own] = np.inf
        out[s] = sq.min(axis=1)
    return out


class ProtoClassifier(TorchPrototypeClassifier):
    """Prototype classifier whose every prototype is a real training case of its class.

    Each class (or label) gets ``n_prototypes_per_class`` prototypes in a
    latent space ``z = h(x)`` (``h`` a learned map, or the identity). With the
    default *mixture head* a class's score is built from its own prototypes
    only: ``score_c = scale * tau * logsumexp_{k in c}(s_k / tau) / T + b_c``
    for the similarities ``s_k`` (cosine by default), so every explanation
    names cases of the predicted class and, for small ``tau``, one case
    carries most of the score. With ``head="linear"`` (ProtoPNet's
    class-connection layer) the scores are ``s @ W / T`` and every prototype
    speaks for every class. Map, prototypes and head are trained with
    mini-batch Adam on the cross-entropy, plus ProtoPNet's or ST-ProtoPNet's
    costs where their weights are set; a *snap* cost pulls each prototype
    toward the latent vector of its nearest training row of its class during
    training, and afterwards every prototype is *projected* onto that row --
    ``prototype_sample_indices_`` names it -- and tied to it: the prototype
    is the latent vector of that training case from then on. The linear head
    is then refit by a convex problem. The formulas are in the
    :doc:`user guide <proto>`.

    With a 2-D indicator ``y`` (multi-label), each label gets its own
    prototypes, the probabilities are independent sigmoids of the scores and
    ``predict`` returns an indicator matrix.

    Parameters
    ----------
    n_prototypes_per_class : int, default=5
        Prototypes per class (per branch with ``prototype_kind="both"``),
        initialised by class-wise k-means++ in the latent space (a class with
        fewer samples starts from its samples, repeated and jittered).
    head : {"mixture", "linear"}, default="mixture"
        ``"mixture"``: each class scored by a soft maximum over its own
        prototypes, with learned ``tau``, ``scale`` and class biases;
        ``"linear"``: ProtoPNet's dense class-connection weights ``W``.
    projection : {None, "linear", "mlp"}, default="linear"
        Learned map ``h``, trained jointly with the prototypes. ``"linear"``
        starts at the identity (at the training rows' principal axes when it
        narrows, a random semi-orthogonal map when it widens); with the
        distance-based similarities the map
        ends in a sigmoid (ProtoPNet's add-on layers).
    projection_dim : int, "auto" or None, default="auto"
        Output size of ``h``. None: ``n_features``. "auto": at most
        :data:`AUTO_PROJECTION_DIM` (384) for the linear map, ``n_features``
        for the MLP. A linear map to fewer dimensions than ``n_features``
        starts at the training rows' principal axes. Ignored when
        ``projection=None`` (no map: the latent space is the input space).
    similarity : {"cosine", "log", "rbf"}, default="cosine"
        ``cos`` of the latent vectors, ``log((d + 1) / (d + 1e-4))`` or
        ``exp(-d / width)`` for squared distances ``d``. ``"log"`` and
        ``"rbf"`` depend on the units of ``X`` (standardise it for them; see
        the user guide); ``"cosine"`` does not.
    latent_offset : "auto" or float in [0, 1e15), default="auto"
        With ``similarity="cosine"`` and a map: a constant coordinate ``c``
        appended to every latent vector, so that the cosine sees a vector's
        length as well as its direction (0: the plain cosine). "auto": the
        median norm of the training rows' latent vectors at the start. In
        the latent space's units: the map sees the rows divided by the power
        of two nearest their median distance from their mean. Ignored by the
        other similarities (``"log"``, ``"rbf"``) and when ``projection=None``.
        One so large that the cosines of half of the rows with their nearest
        prototype of another class round to 1 in float32 (every such row
        scored alike) raises a ``ValueError`` naming the bound (about 2e3
        times "auto" on digits).
    rbf_width : float >= 1.2e-38 or "auto", default="auto"
        ``width`` of the ``"rbf"`` similarity; "auto" is the mean squared
        distance from a training sample to its nearest initial prototype.
        (At least float32's smallest normal number: torch keeps it as
        float32, where less rounds to 0.) One that leaves half of the rows every
        similarity below float32's epsilon (their median squared distance to
        the nearest prototype, 0 for a row on one, over ``rbf_width`` above
        about 15.9: every such row scored alike) raises a ``ValueError`` naming
        the bound. Ignored by the other similarities.
    temperature : "auto" or float in [1e-15, 1e30], default="auto"
        The scores are divided by ``T``. "auto": ``T`` is fitted after
        training to minimise the log-loss on the early-stopping split (on the
        training rows without early stopping), so ``predict_proba`` is
        calibrated; predictions do not change. A float is used as given, also
        during training: with the linear head it can change what is learnt
        (its last-layer refit is solved in the logits' units, ``W / T``: on
        the same network any float refits the scores ``T = 1`` refits, ``W``
        ``T`` times as large).
        The mixture head learns its scale and biases, which absorb ``T``: its
        scale starts ``T`` times its start at 1 and its biases are learnt in
        units of ``T``, so any float trains the scores ``T = 1`` trains (up to
        rounding; ``scale_`` is ``T`` times as large), uncalibrated; not with
        ``weight_decay > 0``, which draws the scale toward 1 whatever ``T``. At least
        1e-15: training divides the scores by it in float32, where the loss's
        gradients, which grow as ``1 / T``, overflow when Adam squares them
        below about 1e-19 (and the scores themselves below about 1e-37). At
        most 1e30: the mixture head's scores before the division are about
        ``T`` times those of ``T = 1``, and overflowed float32 from about 1e37.
    snap_weight : float >= 0, default=1.0
        Weight of the snap cost: the sum over classes of the mean distance
        from a prototype to the latent vector of its nearest training row of
        its class (found again after every epoch). 0 leaves the prototypes
        free until the final projection. Ignored when ``project=False``.
    input_noise : float >= 0, default=0.5
        Training-time augmentation: each batch row ``x`` gets Gaussian noise
        of norm about ``input_noise * ||x - m||`` (a regulariser of the map;
        ``m`` is the training rows' mean with a map, 0 without one).
    prototype_kind : {"trivial", "support", "both"}, default="trivial"
        ST-ProtoPNet prototype type.
    n_tokens : int or None, default=None
        Part prototypes over tokens: ``X`` holds sequences in skproto's token
        layout with this many slots (``SentenceEncoder(output="tokens")``
        writes it: ``n_tokens * (d + 1)`` columns, embeddings then a mask).
        Each prototype is then a *token* of a training row of its class, a
        row's similarity to it is the largest over the row's real tokens
        (ProtoPNet's max-pooling over patches), and ``explain`` names the
        query token that matched (``Explanation.query_token``) and the
        training token the prototype is (``prototype_token_indices_``).
    cluster_weight, separation_weight : float >= 0, default=0.0
        ProtoPNet's cluster and separation costs (ProtoPNet uses 0.8 and 0.08).
        ``separation_weight`` is that of the trivial prototypes: ignored with
        ``prototype_kind="support"``.
    l1_weight : float >= 0, default=1e-4
        L1 on wrong-class connections of the linear head, in the logits'
        units: on ``W / T`` (ProtoPNet's L1 is on ``W`` at ``T = 1``; at
        ``temperature=0.1`` its 1e-4 is 1e-5 here). Ignored by the mixture
        head.
    support_separation_weight : float >= 0, default=0.48
        Separation weight of support prototypes. Ignored with
        ``prototype_kind="trivial"``.
    closeness_weight, discrimination_weight : float >= 0, default=0.0
        Weights of the ST-ProtoPNet closeness (support) and discrimination
        (trivial) losses (ST-ProtoPNet uses 1.0). ``closeness_weight`` is
        ignored with ``prototype_kind="trivial"``, ``discrimination_weight``
        with ``prototype_kind="support"``.
    project : bool, default=True
        Project prototypes onto training samples after training.
    push_every : int or None, default=None
        Also project every ``push_every`` epochs during training (ProtoPNet's
        schedule). None: only the final projection.
    alpha : float >= 0, default=0.1
        Strength of the penalty of the linear head's refit (the inverse of
        logistic regression's ``C``). Ignored by the mixture head (it has no
        refit) and when ``last_layer_max_iter=0``.
    last_layer_max_iter : int, default=200
        L-BFGS iterations of the linear head's refit; 0 skips the refit.
        Ignored by the mixture head.
    max_epochs : int, default=30
        Maximum number of epochs (passes over the training data).
    batch_size : int or "auto", default="auto"
        Mini-batch size. "auto": ``n // 32`` for ``fit`` on ``n`` training
        rows, clipped to [32, 256] (on small data an epoch takes at least
        about 32 steps: with 256-row batches, early stopping ended a fit of a
        few hundred rows after six steps), and 256 in ``partial_fit``.
    learning_rate : float or "auto", default="auto"
        Adam learning rate. "auto": 6e-3 for the cosine similarity on a
        linear map (the default model), 3e-3 otherwise (chosen on CLINC150's
        val split; see the user guide).
    weight_decay : float >= 0, default=0.0
        Adam weight decay.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the data (stratified when every
        class can be), stop when the loss on it has not dropped by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the parameters of the epoch
        with the lowest held-out loss. Without it, the same rule is applied to
        the training loss. Projection and refit use every row.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out for early stopping and for the
        fitted temperature, in (0, 1). Ignored when ``early_stopping=False``.
    n_iter_no_change : int, default=2
        Epochs without improvement before early stopping (2: on CLINC150,
        seeds 0-2, the same model as 3, one epoch sooner).
    tol : float, default=1e-4
        The drop of the held-out loss (the training loss without early
        stopping) that counts as an improvement.
    class_weight : dict, "balanced" or None, default=None
        Weights of classes in the loss, as in scikit-learn.
    warm_start : bool, default=False
        Continue from the fitted parameters when ``fit`` is called again.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where training runs: ``"cuda:1"`` names one GPU of several, and
        ``"auto"`` takes CUDA where torch finds it. Fitted parameters are
        float64 numpy arrays and prediction runs on the CPU, so a model
        trained on a GPU predicts anywhere after pickling.
    n_jobs : int or None, default=None
        CPU threads for training and prediction (torch, and BLAS/OpenMP
        during fit). None: 1, which never oversubscribes a shared machine;
        -1: every usable core.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, shuffling and the augmentation noise: fits are
        bit-for-bit repeatable on the CPU for a fixed seed and ``n_jobs``.
    verbose : int, default=0
        Print per-epoch loss and accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (``arange(n_labels)`` for multi-label ``y``).
    prototypes_ : ndarray of shape (n_prototypes, dim)
        Prototype vectors in the latent space: after projection, the latent
        vector ``h(X[i])`` of the training row ``i`` each is tied to (the row
        itself when ``projection=None``); with a ``latent_offset`` the last
        column of a projected prototype is that constant (free prototypes,
        ``project=False``, hold it up to the cosine's scale).
    prototype_labels_ : ndarray of shape (n_prototypes,)
        Class label of each prototype.
    prototype_kinds_ : ndarray of shape (n_prototypes,)
        ``"trivial"`` or ``"support"`` for each prototype.
    prototype_sample_indices_ : ndarray of shape (n_prototypes,)
        Training row each prototype was projected onto (-1 if not projected);
        after ``partial_fit``, rows counted over all the data seen.
    prototype_cases_ : ndarray of shape (n_prototypes,), dtype=object, or None
        The raw case (a text, an image, ...) of the training row each
        prototype is, when ``fit`` received rows tagged with their raw inputs
        (:func:`skproto.explain.attach_cases`, or the output of an encoder of
        :mod:`skproto.encoders`). None when the rows were not tagged; an entry
        is None for a prototype without a case (one not projected onto a row).
        ``explain`` names these cases.
    prototype_token_indices_ : ndarray of shape (n_prototypes,) or None
        With ``n_tokens``: the token slot, within its training row, that
        each prototype is (-1 if not projected); None otherwise.
    last_layer_ : ndarray of shape (n_prototypes, n_classes)
        Class connections: ``W`` of the linear head (a column of zeros for a
        class without training rows yet, which scores ``-inf``), the 0/1
        class membership of each prototype for the mixture head (built when
        read: the model keeps each prototype's class, ``prototype_labels_``).
    intercept_ : ndarray of shape (n_classes,)
        Class biases ``b / T`` (zeros for the linear head).
    tau_, scale_ : float
        The mixture head's softness within a class and its scale (mixture
        head only).
    temperature_ : float
        The temperature ``T`` the scores are divided by.
    history_ : dict
        Per-epoch ``loss``, ``train_score``, ``val_loss``, ``val_score`` and
        ``seconds``; ``accuracy_before_projection``,
        ``val_accuracy_before_projection``, ``accuracy_after_projection``;
        ``refit``: the linear head's last-layer refit (``method``, ``loss``
        per L-BFGS evaluation, ``n_iter``, ``seconds``, ``converged`` and
        ``max_gradient``), None for the mixture head (it has none);
        ``temperature``: how ``temperature_`` was fitted.
    loss_curve_ : list of float
        Training loss per epoch.
    n_iter_ : int
        Number of epochs run (over all ``fit``/``partial_fit`` calls).
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    Notes
    -----
    ``score_samples`` (higher = more in-distribution) is the ``logsumexp``
    over the classes of ``decision_function``; ``transform`` returns the
    similarities of the latent rows to the prototypes.

    See Also
    --------
    RBFPrototypeClassifier : Components with certified robustness radii.
    NearestMeanClassifier : One closed-form prototype (the mean) per class.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import ProtoClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ProtoClassifier(n_prototypes_per_class=2, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> rows = clf.prototype_sample_indices_  # the training cases behind the prototypes
    >>> bool((y[rows] == clf.prototype_labels_).all())
    True
    >>> ex = clf.explain(X[:1], n_prototypes=2)
    >>> bool((ex.prototype_label == ex.predicted[:, None]).all())  # cases of its own class
    True
    """

    _pairwise_name = "similarity"
    _bias_name = "bias"
    _supports_multilabel = True

    _parameter_constraints: dict = {
        "n_prototypes_per_class": [Interval(Integral, 1, None, closed="left")],
        "head": [StrOptions({"mixture", "linear"})],
        # (torch computes in float32: larger values overflowed inside it)
        "snap_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "input_noise": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "projection": [None, StrOptions({"linear", "mlp"})],
        "projection_dim": [None, StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "similarity": [StrOptions({"log", "rbf", "cosine"})],
        "latent_offset": [StrOptions({"auto"}), Interval(Real, 0, FLOAT32_MAX_ABS, closed="left")],
        "rbf_width": [
            StrOptions({"auto"}),
            Interval(Real, FLOAT32_TINY, FLOAT32_MAX, closed="left"),
        ],
        # (used in training: the loss's gradients grow as 1 / temperature, and Adam
        # squares them in float32; 1e-37 overflowed the scores: "Training diverged";
        # the mixture head's scores before the division grow as the temperature:
        # 1e37 diverged)
        "temperature": [
            StrOptions({"auto"}),
            Interval(Real, FLOAT32_MIN_TEMPERATURE, FLOAT32_MAX_TEMPERATURE, closed="both"),
        ],
        "prototype_kind": [StrOptions({"trivial", "support", "both"})],
        "n_tokens": [None, Interval(Integral, 1, None, closed="left")],
        "cluster_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "separation_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "l1_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "support_separation_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "closeness_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "discrimination_weight": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "project": ["boolean"],
        "push_every": [None, Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, FLOAT32_MAX, closed="left")],
        "last_layer_max_iter": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        **TorchPrototypeClassifier._training_constraints,
        "learning_rate": [StrOptions({"auto"}), Interval(Real, 0, FLOAT32_MAX, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_prototypes_per_class: int = 5,
        *,
        head: str = "mixture",
        projection: str | None = "linear",
        projection_dim: int | str | None = "auto",
        similarity: str = "cosine",
        latent_offset: str | float = "auto",
        rbf_width: str | float = "auto",
        temperature: str | float = "auto",
        snap_weight: float = 1.0,
        input_noise: float = 0.5,
        prototype_kind: str = "trivial",
        n_tokens: int | None = None,
        cluster_weight: float = 0.0,
        separation_weight: float = 0.0,
        l1_weight: float = 1e-4,
        support_separation_weight: float = 0.48,
        closeness_weight: float = 0.0,
        discrimination_weight: float = 0.0,
        project: bool = True,
        push_every: int | None = None,
        alpha: float = 0.1,
        last_layer_max_iter: int = 200,
        max_epochs: int = 30,
        batch_size: int | str = "auto",
        learning_rate: float | str = "auto",
        weight_decay: float = 0.0,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 2,
        tol: float = 1e-4,
        class_weight: dict | str | None = None,
        warm_start: bool = False,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_prototypes_per_class = n_prototypes_per_class
        self.head = head
        self.projection = projection
        self.projection_dim = projection_dim
        self.similarity = similarity
        self.latent_offset = latent_offset
        self.rbf_width = rbf_width
        self.temperature = temperature
        self.snap_weight = snap_weight
        self.input_noise = input_noise
        self.prototype_kind = prototype_kind
        self.n_tokens = n_tokens
        self.cluster_weight = cluster_weight
        self.separation_weight = separation_weight
        self.l1_weight = l1_weight
        self.support_separation_weight = support_separation_weight
        self.closeness_weight = closeness_weight
        self.discrimination_weight = discrimination_weight
        self.project = project
        self.push_every = push_every
        self.alpha = alpha
        self.last_layer_max_iter = last_layer_max_iter
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ---------------------------------------------------------- public API
    @_fit_context(prefer_skip_nested_validation=True)
    @unchanged_on_failure
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> ProtoClassifier:
        """Train prototypes, map and last layer; then project the prototypes.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (e.g. frozen embeddings).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels, or a multi-label indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples in every loss term.

        Returns
        -------
        self : ProtoClassifier
            Fitted estimator.
        """
        if self.push_every and not self.project:
            raise ValueError(
                "push_every projects the prototypes during training, and project=False "
                "asks for none; set push_every=None, or project=True."
            )
        warm = self.warm_start and hasattr(self, "_state")
        if warm:  # (changed, the saved network no longer fits, or the change was ignored)
            self._check_structure("warm_start", "set warm_start=False to fit afresh")
        self._fit(X, y, sample_weight, warm=warm)
        self._n_seen = _num_samples(X)
        return self

    _structure_params = (
        "head",
        "similarity",
        "projection",
        "projection_dim",
        "n_prototypes_per_class",
        "prototype_kind",
        "latent_offset",
        "rbf_width",
        "n_tokens",
    )

    def _can_stream(self) -> bool:
        """Whether these parameters stream at all (``available_if`` of ``partial_fit``).

        As scikit-learn's MLPClassifier with ``solver="lbfgs"``: a method every call
        of which raises is absent, so ``hasattr(clf, "partial_fit")`` is False and
        wrappers (OneVsRestClassifier, MultiOutputClassifier) and checks see that
        (``prototype_kind="support"`` had a ``partial_fit`` that always raised).
        """
        if self.n_tokens:
            raise AttributeError(
                "partial_fit does not support n_tokens (token prototypes) yet; use fit."
            )
        if self.head == "mixture" and self.prototype_kind != "trivial":
            raise AttributeError(
                f"partial_fit grows trivial prototypes (rows of each class) only; "
                f"prototype_kind={self.prototype_kind!r} needs fit."
            )
        return True

    @available_if(_can_stream)
    @partial_fit_context
    @unchanged_on_failure
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> ProtoClassifier:
        """Learn from one more batch; new classes may arrive at any call.

        With the mixture head (the default) the prototypes stay real cases
        throughout: a class seen for the first time gets up to
        ``n_prototypes_per_class`` prototypes tied to its own rows in this
        batch (k-means in the latent space, then the nearest distinct rows),
        and the other classes keep theirs; ``prototype_sample_indices_``
        counts rows over all the data seen (the rows of ``fit``, then each
        batch in turn). Then one epoch trains the map, ``tau``, ``scale`` and
        the biases on the batch, with the stored cases of the earlier classes
        replayed (each class weighing as an average class of the batch); when
        the batch brings new classes, the map learns at half the learning
        rate with a penalty on the change of its latent rows, so that the
        earlier classes' rows stay near their prototypes, and the head
        (``tau``, ``scale``, the biases) stays as it is. A class declared in
        ``classes`` counts as new when its first rows arrive.
        ``classes``, when given on the first call, fixes the classes (a
        declared class without rows yet has score ``-inf``); without it,
        ``classes_`` grows, sorted, and the first call may hold a single class.
        It streams trivial prototypes only: with ``prototype_kind="support"``
        or ``"both"`` (and with ``project=False``, or token prototypes) it
        raises; fit such models with ``fit``.

        With ``head="linear"`` (ProtoPNet's dense last layer, in which every
        prototype speaks for every class) the first call needs ``classes`` for
        single-label ``y`` and fixes them, initialises the prototypes from this
        batch (a class absent from it starts at the batch mean, jittered, and
        scores ``-inf``, probability 0, until its rows arrive) and each call
        trains one epoch; the prototypes are not projected: call
        :meth:`project_prototypes` when the stream is done.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        y : array-like of shape (n_samples,), or (n_samples, n_labels) with ``head="linear"``
            Target labels (a 0/1 indicator matrix for multi-label ``y``).
        classes : array-like of shape (n_classes,), default=None
            All classes (at least two), on the first call; later, equal to
            ``classes_``, and then every label of ``y`` must be one of them.
        sample_weight : array-like of shape (n_samples,), default=None
            Rows of weight 0 are absent, as in ``fit``.

        Returns
        -------
        self : ProtoClassifier
            The fitted estimator.
        """
        if hasattr(self, "_state"):
            self._check_structure("partial_fit", "call fit, or partial_fit on a fresh estimator")
        if self.head == "mixture" and _validation.is_multilabel(y):
            # (it went the linear head's way: every prototype a free vector)
            raise ValueError(
                "partial_fit streams single-label y with the mixture head; a multi-label "
                "y is fitted with fit, or streamed with head='linear'."
            )
        if self.head == "mixture":  # (trivial prototypes only: _can_stream)
            return self._stream_fit(X, y, classes, sample_weight)
        return self._partial_fit(X, y, classes, sample_weight)

    def _stream_fit(self, X, y, classes, sample_weight):
        """``partial_fit`` of the mixture head: grow new classes, then one epoch with replay."""
        first = not hasattr(self, "_state")
        X_raw = X
        X, y, sample_weight = self._validate_batch(X, y, sample_weight, reset=first)
        y = np.asarray(y).ravel()
        if first:
            declared = None if classes is None else _validation.check_declared_classes(classes)
            classes_, T, multilabel = _validation.encode_fit_targets(
                self, y, classes=declared, allow_one_class=True
            )
            w = self._training_weights(T, sample_weight, classes_)
            counted_rows(w, context="the first call to partial_fit")  # raises before any change
            self.classes_, self._multilabel = classes_, multilabel
            self._classes_fixed = declared is not None
            self.n_iter_, self._n_seen = 0, 0
            self._kinds = np.array([], dtype=str)
            state = self._empty_state(X, check_random_state(self.random_state))
            history = new_history()
        else:
            if not hasattr(self, "_n_seen"):  # (an AttributeError before)
                raise ValueError(
                    "This ProtoClassifier was saved by an earlier version of skproto, "
                    "which did not count the rows it was fitted on, so partial_fit "
                    "cannot number the rows of its prototypes (prototype_sample_indices_); "
                    "fit it again to continue a stream."
                )
            _validation.check_same_classes(self, classes)
            if self._multilabel:
                raise _validation.layout_mismatch(self, y)
            fixed = getattr(self, "_classes_fixed", False)
            new = _validation.new_labels(self, y, fixed=fixed, classes=classes)
            state = {k: np.array(v) for k, v in self._state.items()}
            if len(state["head.codes"]) and not state["tied"]:
                # the stream keeps every prototype as the latent vector of its case:
                # free prototypes (no case) were all recomputed from zero rows
                raise ValueError(
                    "partial_fit continues a model whose prototypes are training rows; "
                    "this one's are free vectors (fitted with project=False, or a "
                    "prototype found no row of its class to be projected onto). Fit with "
                    "project=True, or fit again on all the data."
                )
            if new.size:  # new classes: re-code, keep sorted
                union = _validation.union_labels(self.classes_, new)
                moved = _validation.label_codes(union, self.classes_)
                bias = np.full(len(union), state["head.bias"].mean())
                bias[moved] = state["head.bias"]
                state["head.bias"] = bias
                state["head.codes"] = moved[state["head.codes"].astype(np.intp)].astype(float)
                if getattr(self, "_moments", None) is not None:
                    self._moments = reindex_moments(self._moments, self.classes_, union)
                self.classes_ = union
            history = self.history_
        T = _validation.label_codes(self.classes_, y)
        w = self._training_weights(T, sample_weight)
        n_batch, batch_rows = len(X), counted_rows(w, context="")
        if batch_rows is not None:  # rows of weight 0 are absent
            X, T, w = X[batch_rows], T[batch_rows], w[batch_rows]
        # classes arrive (new labels, or declared ones with their first rows) in a
        # model that has others: learn them while keeping the earlier ones
        had = np.unique(state["head.codes"].astype(np.intp))
        incremental = bool(had.size) and np.setdiff1d(np.unique(T), had).size > 0
        rng = np.random.RandomState(check_random_state(self.random_state).randint(2**31 - 1))
        rng = np.random.RandomState(rng.randint(2**31 - 1) + self.n_iter_)
        with training_context(self._n_threads):
            state, indices = self._grow(state, X, T, rng, batch_rows)
            net = self._continued_network(state).to(self._device)
            Xb, Tb, wb = X, T, w
            if not first and len(T):  # replay the stored cases: each earlier class weighs
                # as an average one
                per_case = average_class_weight(w, T, self.n_prototypes_per_class)
                Xb = np.concatenate([X, self._state["cases"]])
                Tb = np.concatenate([T, np.searchsorted(self.classes_, self.prototype_labels_)])
                wb = np.concatenate([w, np.full(len(Tb) - len(T), per_case, dtype=np.float32)])
            self._codes = state["head.codes"].astype(np.intp)
            loss, config = self._batch_loss(net), self._training_config(1, "partial_fit")
            moments = getattr(self, "_moments", None)
            if incremental:  # new classes: learn them while the map keeps the earlier ones
                loss = _with_drift_penalty(loss, net, _DRIFT_WEIGHT)
                config = replace(config, learning_rate=config.learning_rate * _INCREMENTAL_LR)
                if moments is not None:  # and Gaussian draws stand for the earlier rows
                    present = np.unique(T)
                    Xr, Tr = gaussian_replay(moments, present, _REPLAY_ROWS, rng)
                    per_row = average_class_weight(w, T, _REPLAY_ROWS)  # an average class each
                    Xb, Tb = np.concatenate([Xb, Xr]), np.concatenate([Tb, Tr])
                    wb = np.concatenate([wb, np.full(len(Tr), per_row, dtype=np.float32)])
            # new classes: the head (its sharpness, the classes' biases) stays as fitted;
            # trained on the replayed cases, which are its own prototypes, its scale grew
            # call after call (over-confident probabilities)
            fixed = {"prototypes"} | (_HEAD_PARAMETERS if incremental else set())
            if len(T):  # the batch has rows of positive weight
                self._head_in_temperature_units(net)
                train(
                    net,
                    [p for name, p in net.named_parameters() if name not in fixed],
                    loss,
                    Xb.astype(np.float32),
                    Tb,
                    wb,
                    config,
                    rng,
                    history=history,
                )
                self.n_iter_ += 1
                with torch.no_grad():  # the prototypes follow the map
                    net.prototypes.copy_(net.prototype_vectors())
        if first or moments is not None:  # every row seen, summarised for later replay
            batch = class_moments(X, T, len(self.classes_))
            self._moments = batch if first else merge_moments(moments, batch)
        first_row = self._n_seen
        self._n_seen += n_batch
        # the cases exactly as given (the network computed in float32)
        self._store(net, indices, history, rows=state["cases"])
        self._keep_cases(X_raw, X, y, first_row=first_row)
        return self

    def _empty_state(self, X: np.ndarray, rng) -> dict:
        """The state of a mixture model with no prototype yet (map at its start, its
        weights from ``rng``: a stream's MLP map started from ``RandomState(0)``
        whatever ``random_state``)."""
        n_features = X.shape[1]
        latent_map, Z = self._starting_map(X, rng)
        head = self._make_head(np.zeros(0, dtype=np.intp), len(self.classes_))
        self._head_unit = float(head.temperature)  # (its scale and bias are in its units)
        net = ProtoNetwork(
            latent_map,
            torch.zeros(0, Z.shape[1], dtype=torch.float32),
            head,
            self.similarity,
            1.0,
            n_features=n_features,
        )
        net.tied.fill_(1.0)
        return {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}

    def _check_warm_targets(self, T: np.ndarray) -> None:
        """A class without prototypes (declared to ``partial_fit`` before its rows, or
        whose rows all weighed 0) scores -inf with the mixture head: a warm fit on
        its rows read as a diverged run ("the loss became inf") whatever the rate."""
        if T.ndim != 1 or self.head != "mixture":
            return
        have = np.unique(self._state["head.codes"].astype(np.intp))
        missing = np.setdiff1d(np.unique(T), have)
        if missing.size:
            # partial_fit grows prototypes for a model of tied trivial prototypes
            # without tokens only (it refuses the others)
            grows = (
                self.prototype_kind == "trivial"
                and not self.n_tokens
                and (not len(self._state["head.codes"]) or bool(self._state["tied"]))
            )
            remedy = "Give them prototypes with partial_fit, or set" if grows else "Set"
            raise ValueError(
                f"warm_start continues the fitted prototypes, and class(es) "
                f"{_validation.shown_labels(self.classes_[missing])} have none yet "
                "(declared to partial_fit before their rows arrived, or all their rows "
                f"weighed 0). {remedy} warm_start=False to fit afresh."
            )

    def _grow(
        self, state: dict, X: np.ndarray, T: np.ndarray, rng, batch_rows: np.ndarray | None
    ) -> tuple[dict, np.ndarray]:
        """Prototypes for the classes of ``T`` that have none: rows of ``X`` of that class.

        Returns the new state and every prototype's row index over all data
        seen (this batch's rows counted from ``_n_seen``; ``X`` holds the
        batch's rows ``batch_rows``, None: all of them).
        """
        indices = np.asarray(getattr(self, "prototype_sample_indices_", np.zeros(0)), np.intp)
        have = np.unique(state["head.codes"].astype(np.intp))
        new = np.setdiff1d(np.unique(T), have)
        if not len(new):
            return state, indices
        net = self._network(state, torch.float64)
        with torch.no_grad():
            Z = net.latent(
                torch.as_tensor(np.array(X, dtype=np.float64))
            ).numpy()  # (a copy: X may be read-only)
        Zc = normalize_rows(Z) if self.similarity == "cosine" else Z
        # k-means in the latent space, then each centre's nearest distinct row of
        # its class (the projection's chunked search: no rows x centres x dim array)
        counts = np.zeros(len(self.classes_), dtype=np.intp)
        counts[new] = np.minimum(self.n_prototypes_per_class, np.bincount(T)[new])
        centers, codes = classwise_kmeans(Zc, T, counts, rng)
        rows = project_onto_rows(centers, Zc, groups=codes, targets=T)
        state = dict(state)
        if not len(have) and self.similarity == "rbf":  # the first prototypes: the
            # width as fit derives it (a width of 1 read raw digits at 0.18, not 0.975)
            state["width"] = np.asarray(self._rbf_width(Z, Z[rows]))
        state["cases"] = np.concatenate([state["cases"], X[rows]])
        state["prototypes"] = np.concatenate([state["prototypes"], Z[rows]])
        state["head.codes"] = np.concatenate([state["head.codes"], codes.astype(float)])
        self._kinds = np.concatenate([self._kinds, np.repeat("trivial", len(rows))])
        batch_index = rows if batch_rows is None else batch_rows[rows]
        return state, np.concatenate([indices, self._n_seen + batch_index])

    @unchanged_on_failure
    def project_prototypes(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> ProtoClassifier:
        """Project the prototypes onto (X, y) and refit the last layer.

        Each prototype becomes the latent vector of the nearest sample of its
        own class in ``X``; ``prototype_sample_indices_`` then refers to rows
        of this ``X`` (and ``prototype_cases_`` to its raw cases, if ``X`` is
        tagged with them; a later ``partial_fit`` counts its rows after this
        ``X``'s). ``fit`` does this itself when ``project=True``. With
        ``temperature="auto"`` the temperature is then refitted on ``(X, y)``
        (each prototype's own row scored without it), as ``fit`` does without
        early stopping: rows the network was trained on read sharper than
        unseen ones (digits / 16, its training rows: 0.63 against the 0.91 of
        the fit's held-out rows), so project onto rows it has not seen for
        calibrated probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to project onto.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Their labels: a prototype goes to a row of its own class.
        sample_weight : array-like of shape (n_samples,), default=None
            Rows of weight 0 are not candidates; the refit weighs rows by it.

        Returns
        -------
        self : ProtoClassifier
            The estimator, with projected prototypes.
        """
        check_is_fitted(self)
        self._project_onto(X, y, sample_weight)
        self._n_seen = _num_samples(X)  # (rows are counted from this X on, as after fit)
        return self

    # ------------------------------------------------------------ template
    _cases_buffer = "cases"
    _temperature_prior = 1.0  # cross-entropy trains the scale of the scores

    @property
    def _similarity_spread(self) -> float:
        """Typical range of the similarity values (scales the mixture head's start)."""
        return 5.0 if self.similarity == "log" else 1.0

    def _make_head(
        self, codes: np.ndarray, n_classes: int, weight=None, possible=None
    ) -> torch.nn.Module:
        """A fresh head: the mixture head, or the linear one (``weight`` or +1/-0.5;
        ``possible``: which classes it scores, None: all)."""
        t0 = 1.0 if self.temperature == "auto" else float(self.temperature)
        if self.head == "mixture":
            spread = self._similarity_spread
            return MixtureHead(
                torch.as_tensor(codes, dtype=torch.long),
                n_classes,
                tau=0.03 * spread,  # chosen on CLINC150 val: one case carries most of a score
                # T times the scale of T = 1, so that scale / T starts where it does at
                # T = 1 (at 20 / T, T = 0.1 trained on saturated scores: multi-label iris
                # learnt nothing; see _head_in_temperature_units)
                scale=20.0 / spread * t0,
                temperature=t0,
            )
        if weight is None:
            weight = np.where(np.eye(n_classes)[codes] > 0, 1.0, -0.5).astype(np.float32)
        if possible is not None:
            possible = torch.as_tensor(possible, dtype=torch.bool)
        return LinearHead(torch.as_tensor(weight, dtype=torch.float32), t0, possible)

    def _build(self, X, T, rng):
        """Initial network: latent map, class-wise k-means prototypes, a fresh head."""
        # what a later class-incremental partial_fit replays for these classes
        single = T.ndim == 1 and not self.n_tokens
        self._moments = class_moments(X, T, len(self.classes_)) if single else None
        X = X.astype(np.float32, copy=False)
        X_rows, T_rows = X, T
        X, T, _ = self._candidates(X, T)  # with n_tokens: every real token of every row
        n_classes = len(self.classes_)
        n_features = X.shape[1]
        latent_map, Z = self._starting_map(X, rng)
        Zc = normalize_rows(Z) if self.similarity == "cosine" else Z
        kinds = ["trivial", "support"] if self.prototype_kind == "both" else [self.prototype_kind]
        counts = np.full(n_classes, self.n_prototypes_per_class)
        own = self.head == "mixture" and T.ndim == 1
        blocks = [classwise_kmeans(Zc, T, counts, rng, own_rows_only=own) for _ in kinds]
        P = np.concatenate([b[0] for b in blocks]).astype(np.float32)
        codes = np.concatenate([b[1] for b in blocks])
        self._kinds = np.repeat(kinds, len(codes) // len(kinds))
        self._codes = codes
        width = self._rbf_width(Z, P) if self.similarity == "rbf" else 1.0
        self._check_similarities_resolved(Z, P, width, T, codes)
        possible = None
        if self.head == "linear" and T_rows.ndim == 1:
            # a class without rows (declared to partial_fit, or its rows all weigh 0)
            # scores -inf until they arrive (_rows_arrive), as under the mixture head
            possible = np.bincount(T_rows, minlength=n_classes) > 0
        head = self._make_head(codes, n_classes, possible=possible)
        self._head_unit = float(head.temperature)  # (the mixture head's scale and bias
        # are in its units: _continued_network)
        net = ProtoNetwork(
            latent_map,
            torch.as_tensor(P, dtype=torch.float32),
            head,
            self.similarity,
            width,
            n_features=n_features,
            n_tokens=self.n_tokens or 0,
        )
        if T_rows.ndim == 2 and self.head == "mixture":
            _center_label_biases(net, X_rows, T_rows)
        self._pull_rows = self._pull_targets(net, X_rows, T_rows)
        return net

    def _trainable(self, net) -> list:
        self._head_in_temperature_units(net)
        return super()._trainable(net)

    def _continued_network(self, state: dict) -> torch.nn.Module:
        """As the template's; the mixture head's scale and bias follow a temperature set
        since the fit into its units (:meth:`_head_in_temperature_units`).

        They are stored in the units of the temperature they were trained at
        (``_head_unit``: a float ``T``, or 1 for "auto"); the new temperature
        divides them now. Left there, ``fit(temperature=0.1)``, then
        ``set_params(temperature=1.0)`` and a warm fit started from scores 10 times
        flatter than trained (multi-label iris, subset accuracy 0.51 against 0.89
        continued at 0.1), and 1.0 then 0.1 from scores 10 times sharper; a
        class-incremental batch, whose head stays fixed, kept them.
        """
        net = super()._continued_network(state)
        if self.head == "mixture" and self.temperature != "auto":
            ratio = float(self.temperature) / self._stored_head_unit()
            if ratio != 1.0:
                with torch.no_grad():
                    net.head.log_scale.add_(float(np.log(ratio)))
                    net.head.bias.mul_(ratio)
            self._head_unit = float(self.temperature)
        return net

    def _head_in_temperature_units(self, net) -> None:
        """A given temperature ``T``: Adam steps the mixture head's bias ``T`` times as far.

        The head's logits are ``(scale * tau * logsumexp + b) / T``: its scale
        starts ``T`` times the one of ``T = 1`` (:meth:`_make_head`) and its
        bias in ``T``'s units (:func:`_center_label_biases`), so that training
        at any ``T`` moves the logits as training at 1 does (``log_scale``
        steps are ratios already). With plain steps of ``b``, the logits'
        offsets moved ``1 / T`` times as far (0.3 a step at ``T = 0.01``).
        "auto" trains a fresh head at 1 (a unit of 1: nothing changes); continuing
        a fit at a float ``T``, it keeps that ``T``'s units.
        """
        if self.head == "mixture":
            # (a float T: T, as _continued_network left it; "auto": 1, or the float T
            # of the fit it continues, whose units its scale and bias keep)
            in_units(net.head.bias, self._stored_head_unit())

    def _stored_head_unit(self) -> float:
        """The temperature whose units the mixture head's scale and bias are in."""
        unit = getattr(self, "_head_unit", None)
        if unit is None:  # (pickled before it was kept: a given temperature's, 1 for "auto")
            fitted = getattr(self, "history_", {}).get("temperature")
            unit = getattr(self, "temperature_", 1.0) if fitted is None else 1.0
        return float(unit)

    def _check_similarities_resolved(
        self, Z: np.ndarray, P: np.ndarray, width: float, T: np.ndarray, codes: np.ndarray
    ) -> None:
        """Raise where a given ``rbf_width`` or ``latent_offset`` leaves half of the
        rows ``Z`` (latent, with the offset's column) no similarity to their nearest
        initial prototype ``P`` that float32 tells apart from that of any other row
        (``rbf_width``: a row's own prototype included, which sees it by 1;
        ``latent_offset``: its nearest prototype of a class other than its own,
        ``T``, by the prototypes' classes ``codes``).

        ``rbf_width``: ``exp(-d / width)`` below float32's epsilon adds nothing to the
        terms of order 1 of the scores (``rbf_width=1e-30`` on digits: test accuracy
        0.08, no warning). ``latent_offset``: a constant coordinate far larger than
        the latent vectors leaves every cosine within float32's epsilon of 1, where
        it rounds to 1 (``latent_offset=1e6`` on digits: 0.08, no warning). Such
        rows get the same scores whatever the row: nothing of X is learnt.
        """
        if self.similarity == "rbf" and self.rbf_width != "auto":
            # (a row's own prototype included: it sees the row by about 1, whatever
            # the width; measured from the next one, rows that are prototypes, one a
            # class or duplicates, read the distance between classes, and a width
            # of their spread was refused)
            near = min_squared_distances(Z, P)
            typical = float(np.median(near)) if near.size else 0.0
            if typical > width * -np.log(FLOAT32_RESOLUTION):
                auto = self._rbf_width_of(squared_distances_to_others(Z, P), Z)
                least = typical / -np.log(FLOAT32_RESOLUTION)
                raise ValueError(
                    f"rbf_width={self.rbf_width!r} is too small for these rows: their "
                    f"median squared latent distance to the nearest prototype is "
                    f"{typical:.3g}, so half of them have every similarity "
                    f"exp(-d / rbf_width) below float32's resolution (its epsilon, "
                    f"{FLOAT32_RESOLUTION:.2g}; rbf_width must be at least {least:.3g} "
                    "here) and the same class scores whatever the row: the model cannot "
                    f"learn from X. Use rbf_width='auto' ({auto:.3g} here) "
                    "or a width of that order (up to some ten times that bound, the "
                    "model still learns little)."
                )
        offset = self.latent_offset
        if self.similarity == "cosine" and offset != "auto" and offset > 0 and self.projection:
            Zn = normalize_rows(Z.astype(np.float64))
            # 1 - cos = |z - p|^2 / 2 of unit vectors: no cancellation near 1. Of the
            # nearest prototype of another class: a row's cosines with its own class's
            # round to 1 as well, and it scores the two alike. (The nearest of any
            # class read jittered copies of a row, a class having fewer distinct rows
            # than prototypes, at 1 - cos of about 1e-7 whatever the offset: 4 one-hot
            # rows of 50 copies each were refused from 20, with a bound just below the
            # offset given, and trained to 1.0 at 50; and it read a class's own spread,
            # refusing digits from 1.2e3, where 1,347 rows still reached 0.79 at 1.5e3
            # and 0.75 at 2e3, chance at 2.5e3; below either bound learning is
            # erratic: 600 rows fitted at chance from 1e3)
            near = _nearest_of_another_class(Zn, normalize_rows(P.astype(np.float64)), T, codes)
            near = near[np.isfinite(near)] / 2
            typical = float(np.median(near)) if near.size else np.inf
            if typical < FLOAT32_RESOLUTION:
                # 1 - cos falls as 1 / offset**2 where the offset dominates the vectors
                most = offset * np.sqrt(typical / FLOAT32_RESOLUTION)
                auto = float(np.median(np.sqrt(row_sqnorms(Z[:, :-1].astype(np.float64)))))
                raise ValueError(
                    f"latent_offset={offset!r} is too large for these rows: it outweighs "
                    "their latent vectors so far that the cosines of half of them with "
                    "their nearest prototype of another class lie within float32's "
                    f"resolution (its epsilon, {FLOAT32_RESOLUTION:.2g}) of 1, where they "
                    "round to 1, as do those with their own class's prototypes, and those "
                    "rows get the same class scores whatever the row: the model cannot "
                    f"learn from X. latent_offset must be below about {most:.3g} "
                    f"here; use latent_offset='auto' ({auto:.3g} here, the latent "
                    "vectors' median norm) or a value of that order (from some 100 times "
                    "it the model learns less)."
                )

    def _rbf_width(self, Z: np.ndarray, P: np.ndarray) -> float:
        """``rbf_width``; "auto": the rows' mean squared latent distance to their
        nearest prototype (not a row's own)."""
        if self.rbf_width != "auto":
            return float(self.rbf_width)
        return self._rbf_width_of(squared_distances_to_others(Z, P), Z)

    @staticmethod
    def _rbf_width_of(near: np.ndarray, Z: np.ndarray) -> float:
        """``rbf_width="auto"`` from the rows' squared distances ``near`` to their
        nearest prototype other than their own."""
        mean_d = float(np.mean(near)) if near.size else 0.0
        return mean_d if mean_d > 0 else float(Z.var() * Z.shape[1] or 1.0)

    def _batch_size(self, n_rows: int | None) -> int:
        if self.batch_size != "auto":
            return self.batch_size
        return 256 if n_rows is None else int(np.clip(n_rows // 32, 32, 256))

    @property
    def _learning_rate(self) -> float:
        if self.learning_rate != "auto":
            return self.learning_rate
        return 6e-3 if self.projection == "linear" and self.similarity == "cosine" else 3e-3

    def _set_scales(self) -> tuple[str, ...]:
        given = {
            "rbf_width": self.similarity == "rbf",
            "temperature": True,
            "latent_offset": self.similarity == "cosine" and self.projection is not None,
        }
        return tuple(name for name, read in given.items() if read and getattr(self, name) != "auto")

    def _noise_seed(self) -> int:
        """Seed of the augmentation noise: from ``random_state`` and the epochs run.

        A method, not a property: each call draws from ``random_state``, and
        properties are read by introspection (``inspect.getmembers``, which
        scikit-learn's HTML repr of a fitted estimator runs): displaying a fitted
        model drew from numpy's global RandomState (``random_state=None``) or
        advanced a shared RandomState instance, so that the next fit from it
        trained another model.
        """
        rng = check_random_state(self.random_state)  # (None: numpy's global RandomState)
        return rng.randint(2**31 - 1) + getattr(self, "n_iter_", 0)

    @property
    def _pulls(self) -> bool:
        """Whether training pulls each prototype toward its nearest training row."""
        return bool(self.snap_weight) and self.project

    def _pull_targets(self, net, X, T) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(found, rows)`` on the training device, for one epoch of the snap cost.

        ``found`` says which prototypes have a nearest allowed row of ``X``
        and ``rows`` holds those rows (float32).
        """
        if not self._pulls or net.tied.item() or not len(X):
            return None
        X, T, _ = self._candidates(X, T)
        indices = self._nearest_rows(net, X, T)
        found = indices >= 0
        # the training device: _build calls this before the network is moved there
        # (on a GPU the first epoch's snap cost mixed CPU rows and CUDA weights)
        dev = self._device
        return torch.as_tensor(found, device=dev), torch.as_tensor(
            take_rows(X, indices[found]), device=dev
        )

    def _snap_cost(self, net, pull) -> torch.Tensor:
        """Sum over classes of the mean distance from a prototype to its pulled row."""
        found, rows = pull
        P = net.prototypes[found]
        Z = net.latent(rows)
        if self.similarity == "cosine":
            d = 1.0 - (normalize_rows(P) * normalize_rows(Z)).sum(-1)
        else:
            d = ((P - Z) ** 2).sum(-1)
        return d.sum() * (len(self.classes_) / len(found))

    def _batch_loss(self, net):
        """Batch loss: cross-entropy plus the optional ProtoPNet / ST-ProtoPNet costs."""
        dev = net.prototypes.device
        n_classes = len(self.classes_)
        # (a copy: a model loaded with joblib's mmap_mode has read-only arrays, which
        # torch warns about)
        codes = torch.as_tensor(np.array(self._codes), device=dev)
        blocks = [
            (kind, torch.as_tensor(np.flatnonzero(self._kinds == kind), device=dev))
            for kind in np.unique(self._kinds)
        ]
        sep_weight = {
            "trivial": self.separation_weight,
            "support": self.support_separation_weight,
        }
        st_weight = {"trivial": self.discrimination_weight, "support": self.closeness_weight}
        linear = self.head == "linear"
        # the linear head's wrong-class connections (n_prototypes x n_classes, as its
        # weight); built for it only: the mixture head's model is n_prototypes x dim
        # (the one-hot was 2 GB at 10,000 classes of 5 prototypes)
        wrong = None
        if linear and self.l1_weight:
            wrong = 1.0 - torch.nn.functional.one_hot(codes, n_classes).float()
        noise = float(self.input_noise)
        generator = torch.Generator(device=dev)
        generator.manual_seed(int(self._noise_seed()))

        n_tokens = self.n_tokens or 0

        centre = net.input_centre

        def augment(x):  # relative Gaussian noise, per row (per token with n_tokens)
            eps = torch.randn(x.shape, generator=generator, device=dev, dtype=x.dtype)
            # relative to the row's distance from the map's centre: relative to
            # its norm, data with a common offset drowned in noise
            size = (x if centre is None else x - centre).norm(dim=-1, keepdim=True)
            return x + size * (noise / np.sqrt(x.shape[-1])) * eps

        def loss(xb, tb, wb):
            if noise and net.training:  # augmentation
                if n_tokens:
                    tokens, mask = unpack_tokens(xb, n_tokens)
                    noisy = augment(tokens).reshape(len(xb), -1)
                    xb = torch.cat([noisy, mask.to(xb.dtype)], dim=1)
                else:
                    xb = augment(xb)
            logits, d, _ = net(xb)
            own = tb[:, codes] > 0 if tb.dim() == 2 else codes[None, :] == tb[:, None]
            total = weighted_mean(classification_loss(logits, tb), wb)
            if self.cluster_weight:
                total = total + self.cluster_weight * weighted_mean(cluster_cost(d, own), wb)
            for kind, idx in blocks:
                if sep_weight[kind]:
                    sep = separation_cost(d[:, idx], own[:, idx])
                    total = total - sep_weight[kind] * weighted_mean(sep, wb)
                if st_weight[kind]:
                    # (the prototypes as the network uses them: tied, the rows' latents)
                    P = net.prototype_vectors()[idx]
                    st = st_protopnet_loss(P, codes[idx], n_classes, kind)
                    total = total + st_weight[kind] * st
            if wrong is not None:  # (not on a class that cannot be scored yet)
                # on W / T, the logits' weights, as the refit's: on W it weighed T
                # times as much against the loss (exactly as before at T = 1)
                off = wrong * net.head.possible
                l1 = (net.head.weight * off).abs().sum() / net.head.temperature
                total = total + self.l1_weight * l1
            pull = getattr(self, "_pull_rows", None)
            if pull is not None and net.training:
                total = total + self.snap_weight * self._snap_cost(net, pull)
            return total

        return loss

    @property
    def _part_dim(self) -> int:
        """Width of one input row of the latent map: a token's with ``n_tokens``."""
        if self.n_tokens:
            return token_dim(self.n_features_in_, self.n_tokens)
        return self.n_features_in_

    def _network(self, state, dtype):
        P = state["prototypes"]
        offset = has_latent_offset(state)
        latent_map = make_latent_map(
            self.projection,
            self._part_dim,
            P.shape[1] - offset,
            np.random.RandomState(0),
            self._bounded_map,
        )
        if has_input_units(state):  # the values of both come with the state
            latent_map = with_input_units(latent_map, self._part_dim)
        if offset:
            latent_map = with_latent_offset(latent_map, 0.0)
        if self.head == "mixture":
            codes = np.asarray(state["head.codes"], dtype=np.intp)
            head = self._make_head(codes, len(state["head.bias"]))
        else:
            weight = np.zeros(state["head.weight"].shape)
            head = self._make_head(self._codes, len(self.classes_), weight)
        tensors = state_tensors(state)
        if "head.weight" in tensors and "head.possible" not in tensors:
            # pickled before the linear head kept which classes have rows: every class
            tensors["head.possible"] = torch.ones(len(self.classes_), dtype=torch.bool)
        net = ProtoNetwork(
            latent_map,
            torch.zeros(P.shape, dtype=torch.float32),
            head,
            self.similarity,
            1.0,
            n_features=self._part_dim,
            n_tokens=self.n_tokens or 0,
        )
        net = net.to(dtype=dtype)  # before loading: float64 values stay exact
        net.load_state_dict(tensors)
        return net

    def _refit(self, net, X, T, w, history, rng, *, projected):
        if self.head != "linear":
            return
        history["refit"] = refit_last_layer(
            net,
            self._codes,
            len(self.classes_),
            X,
            T,
            w,
            alpha=self.alpha,
            l1_weight=self.l1_weight,
            max_iter=self.last_layer_max_iter,
            kernel_penalty=self.similarity != "log",
            verbose=self.verbose,
        )

    def _on_projected(self, net, X, indices):
        """Tie the prototypes to their rows: a learned map now moves them with the data."""
        if len(indices) and (indices >= 0).all():
            net.tie(torch.as_tensor(take_rows(X, indices), device=net.prototypes.device))
        self._pull_rows = None

    def _prototype_groups(self, net):
        return self._codes

    def _projection_space(self, net):
        def embed(X):
            return self._evaluate(net, X, "latent") if net.latent_map is not None else X

        metric = "cosine" if self.similarity == "cosine" else "sqeuclidean"
        return embed, net.prototype_vectors().detach().cpu().numpy(), metric

    def _snapped_values(self, net, rows):
        return rows if net.latent_map is None else self._evaluate(net, rows, "latent")

    def _kept_prototypes(self) -> dict:
        if float(self._state.get("tied", 0.0)) and self.projection is not None:
            # each prototype is its row's latent vector, whatever the map learns:
            # it stays that row (its stale free vector was stored, and its row lost)
            return dict(rows=self._state["cases"], indices=self.prototype_sample_indices_)
        return super()._kept_prototypes()

    def _exact_prototypes(self, net, rows):
        if net.latent_map is None:
            return rows
        latent_map = copy.deepcopy(net.latent_map).to(device="cpu", dtype=torch.float64)
        with torch.no_grad():
            # (a copy: the kept cases are read-only in a model joblib memory-mapped)
            return latent_map(torch.as_tensor(np.array(rows, dtype=np.float64))).numpy()

    def _on_epoch_end(self, net, X, T):
        push = self.project and self.push_every

        def end(epoch):
            if push and epoch % self.push_every == 0:
                self._snap(net, *self._candidates(X, T)[:2])
            if getattr(self, "_pull_rows", None) is not None:
                self._pull_rows = self._pull_targets(net, X, T)

        return end if push or self._pulls else None

    def _validate_training_data(self, X, y, *, reset: bool):
        X, y = super()._validate_training_data(X, y, reset=reset)
        if self.n_tokens:
            # (a mask of other values was read as > 0.5, and plain features fitted)
            check_token_layout(X, self.n_tokens, y)
        return X, y

    def _row_elements(self, n_features: int) -> int:
        # a token row's distances are (its tokens, prototypes) before pooling: counted
        # as one row, a chunk of 8,400 rows of 32 tokens x 500 prototypes took 2 GB
        return max(
            super()._row_elements(n_features),
            prototype_row_elements(n_features, len(self.prototypes_), self.n_tokens),
        )

    def _validate_X_predict(self, X) -> np.ndarray:
        X = super()._validate_X_predict(X)
        if self.n_tokens:
            check_token_layout(X, self.n_tokens)
        return X

    @as_fitted
    def matched_tokens(self, X: ArrayLike) -> np.ndarray:
        """With ``n_tokens``: the token slot of each row that each prototype matches best.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows in skproto's token layout.

        Returns
        -------
        slots : ndarray of shape (n_samples, n_prototypes)
            The real token (slot index) of each row nearest to each prototype:
            the one whose similarity ``transform`` reports; -1 for a row
            without any real token.
        """
        check_is_fitted(self)
        if not self.n_tokens:
            raise ValueError("matched_tokens needs a model fitted with n_tokens.")
        return self._matched_tokens(X)

    def _matched_tokens(self, X: ArrayLike, index: np.ndarray | None = None) -> np.ndarray:
        """:meth:`matched_tokens`, or with ``index`` (n_samples, m) only its columns
        ``index[i]`` of each row, chunk by chunk: ``explain`` built the whole
        (n_samples, n_prototypes) array to read its listed prototypes' (80,000
        rows and 1,000 prototypes: 610 MB for 3 columns a row)."""
        X = self._validate_X_predict(X)
        net = self._inference_network()
        K = len(self.prototypes_)
        out = np.empty((len(X), K if index is None else index.shape[1]), dtype=np.intp)
        rows = max(1, CHUNK_ELEMENTS // max(1, self.n_tokens * max(K, self._part_dim)))
        with torch_threads(self._n_threads), cpu_default():
            for s in range(0, len(X), rows):
                x = torch.from_numpy(
                    np.require(X[s : s + rows], dtype=np.float64, requirements=("C", "W"))
                )
                d, mask = net.token_distances(x)
                d = d.masked_fill(~mask[..., None], float("inf"))
                best = d.argmin(dim=1).numpy()
                best = np.where(mask.any(dim=1).numpy()[:, None], best, -1)
                if index is not None:
                    best = np.take_along_axis(best, index[s : s + rows], axis=1)
                out[s : s + rows] = best
        return out

    @as_fitted
    def explain(
        self,
        X: ArrayLike,
        n_prototypes: int = 3,
        *,
        rank_by: str = "contribution",
        target: ArrayLike | None = None,
    ) -> Explanation:
        explanation = super().explain(X, n_prototypes, rank_by=rank_by, target=target)
        if not self.n_tokens:
            return explanation
        index = explanation.prototype_index
        return replace(
            explanation,
            query_token=self._matched_tokens(X, index),
            prototype_token=np.asarray(self.prototype_token_indices_)[index],
        )

    explain.__doc__ = (TorchPrototypeClassifier.explain.__doc__ or "").replace(
        "\n        Parameters\n",
        "\n        With ``n_tokens``, the explanation also names, for each listed "
        "prototype, the\n        query's token that matched it (``query_token``) and the "
        "token of its training\n        row it is (``prototype_token``).\n"
        "\n        Parameters\n",
        1,
    )

    def _candidates(self, X, T):
        """With ``n_tokens``: every real token as a row, its row's target, and (row, slot)."""
        if not self.n_tokens:
            return X, T, None
        tokens, mask = unpack_tokens(X, self.n_tokens)
        rows, slots = np.nonzero(mask)
        return tokens[rows, slots], T[rows], (rows, slots)

    def _exact_parts(self, X, rows, parts):
        tokens, _ = unpack_tokens(np.asarray(X, dtype=np.float64), self.n_tokens)
        return tokens[rows, parts]

    def _prototype_inputs(self):
        """Input rows of tied prototypes; ``prototypes_`` without a map; else None."""
        if self.n_tokens:  # a prototype is one token: no place in the rows' space
            return None
        if self.projection is None:
            return self.prototypes_
        if float(self._state.get("tied", 0.0)):
            return self._state["cases"]
        return None

    def _scores_without(self, net, X, left_out):
        """The mixture head's scores with some prototypes left out (their similarity -inf)."""
        if self.head != "mixture":
            return None
        dev = next(net.parameters()).device
        K = len(net.prototypes)
        rows, cols = np.asarray(left_out[0]), np.asarray(left_out[1])
        out = []
        with torch.no_grad():
            # in chunks (all the prototypes' token rows at once were (K, n_tokens, K))
            width = prototype_row_elements(X.shape[1], K, net.n_tokens)
            for s in list(chunk_slices(len(X), width)) or [slice(0, 0)]:
                sim = net.pairwise(to_tensor(X[s], dev))
                here = (rows >= s.start) & (rows < s.stop)
                sim[
                    torch.as_tensor(rows[here] - s.start, device=sim.device),
                    torch.as_tensor(cols[here], device=sim.device),
                ] = -float("inf")
                out.append(net.head(sim).cpu().numpy())
        return np.concatenate(out)

    def _checked_split(self, X, T, fit_rows, val_rows):
        """With ``n_tokens``: every class of the rows of positive weight has a real
        token, and keeps one in the fit rows. A class without one got no prototype
        while its rows were trained on (score -inf: "the loss became inf"): its rows
        with tokens all weighing 0, or its only row with tokens held out for early
        stopping."""
        if not self.n_tokens or T.ndim != 1 or not len(T):
            return fit_rows, val_rows
        real = unpack_tokens(X, self.n_tokens)[1].any(axis=1)
        missing = np.setdiff1d(np.unique(T), T[real])
        if missing.size:
            raise ValueError(
                f"No row of class(es) {_validation.shown_labels(self.classes_[missing])!r} of "
                "positive weight has a real token (their mask columns are all 0): there is "
                "nothing a prototype could be. Give such rows a positive sample_weight."
            )
        if val_rows is None:
            return fit_rows, val_rows
        lost = np.setdiff1d(T[real], T[fit_rows][real[fit_rows]])
        if not lost.size:
            return fit_rows, val_rows
        # the first held-out row with a real token of each such class is trained on
        moved = [val_rows[np.flatnonzero((T[val_rows] == c) & real[val_rows])[0]] for c in lost]
        val_rows = np.setdiff1d(val_rows, moved)
        return np.union1d(fit_rows, moved), (val_rows if len(val_rows) else None)

    def _temperature_buffer(self, net):
        return net.head.temperature

    def _set_fitted_attributes(self, net):
        state = self._state
        self.temperature_ = float(state["head.temperature"])
        self.prototypes_ = state["prototypes"]
        n_classes = len(self.classes_)
        if self.head == "mixture":
            self._codes = np.asarray(state["head.codes"], dtype=np.intp)
            # (last_layer_ is built when read)
            self._drop_membership_attributes(self._contributions_are_own_class)
            self.intercept_ = state["head.bias"] / self.temperature_
            with np.errstate(over="ignore"):
                self.tau_ = float(np.exp(state["head.log_tau"]))
                self.scale_ = float(np.exp(state["head.log_scale"]))
            if not (np.isfinite(self.tau_) and np.isfinite(self.scale_)):
                # (finite log-parameters whose exponentials overflow: the scores are inf)
                raise ValueError(
                    "Training diverged: the head's temperature or scale overflowed. "
                    f"Lower learning_rate (it was {self.learning_rate:g})."
                )
        else:
            # a class without rows yet has no connection (its scores are -inf)
            self.last_layer_ = np.where(self._impossible_mask(), 0.0, state["head.weight"])
            self.intercept_ = np.zeros(n_classes)
        self.prototype_labels_ = self.classes_[self._codes]
        self.prototype_kinds_ = np.asarray(self._kinds)
        parts = getattr(self, "_part_indices", None)
        if self.n_tokens and parts is None:  # not projected: no token (was None, and
            parts = np.full(len(self._codes), -1)  # explain failed indexing it)
        self.prototype_token_indices_ = parts if self.n_tokens else None
        self._pull_rows = None

    # ------------------------------------------------------------ head
    def _starting_map(self, X: np.ndarray, rng) -> tuple[torch.nn.Module | None, np.ndarray]:
        """``(map, Z)``: the latent map at its start (weights from ``rng``) and ``X`` under it.

        With the cosine and a ``latent_offset`` the map ends in its
        :class:`LatentOffset` ("auto": the median norm of the rows of ``Z``
        before it). Without a map, ``(None, X)``.
        """
        n_features = X.shape[1]
        dim = self._latent_dim(n_features)
        axes = None
        if self.projection == "linear" and dim < n_features:
            axes = principal_axes(X, dim)  # (fewer with fewer rows: a random start then)
        latent_map = make_latent_map(
            self.projection, n_features, dim, rng, self._bounded_map, axes=axes
        )
        if latent_map is None:
            return None, X
        # the map sees rows centred on their mean: a common offset (raw sensor
        # values, uncentred features) left the cosines all near 1 and the
        # bounded maps' sigmoids saturated (digits + 1e6: chance accuracy);
        # the cosine's map also sees rows of about unit spread, whatever the
        # units of X (a bounded map's sigmoid already trained alike from 1e-3
        # to 255 on digits, and its "rbf" similarity lost 1-4 points of
        # accuracy with the division)
        centre = training_centre(X)
        scale = data_scale(X) if self.similarity == "cosine" else 1.0
        latent_map = with_input_units(latent_map, n_features, scale, centre.astype(np.float32))
        with torch.no_grad():
            Z = latent_map(to_tensor(X, torch.device("cpu"))).numpy()
        offset = self.latent_offset
        if self.similarity != "cosine" or offset == 0:
            return latent_map, Z
        if offset == "auto":
            norms = np.sqrt(row_sqnorms(Z.astype(np.float64)))
            offset = float(np.median(norms)) if len(norms) else 1.0
            offset = offset if np.isfinite(offset) and offset > 0 else 1.0
        column = np.full((len(Z), 1), offset, dtype=Z.dtype)
        return with_latent_offset(latent_map, offset), np.hstack([Z, column])

    def _latent_dim(self, n_features: int) -> int:
        """The map's output size (``projection_dim`` resolved)."""
        if self.projection_dim is None:
            return n_features
        if self.projection_dim == "auto":
            if self.projection == "linear":
                return min(n_features, AUTO_PROJECTION_DIM)
            return n_features
        return int(self.projection_dim)

    @property
    def _bounded_map(self) -> bool:
        """Whether the latent map ends in a sigmoid (see ``projection``)."""
        return self.similarity != "cosine"

    def _activation(self, S: np.ndarray) -> np.ndarray:
        return S

    def _head(self):
        if self.head == "mixture":
            return self.last_layer_, self.intercept_
        return self.last_layer_ / self.temperature_, self.intercept_

    _membership_attributes = ("last_layer_",)

    def _explain_bias(self) -> np.ndarray:
        bias = self.intercept_  # (the head's b: W, n_prototypes x n_classes, is not read)
        if self.head != "mixture":  # a class without rows yet scores -inf
            return np.where(self._impossible_mask(), -np.inf, bias)
        # a class declared to partial_fit without prototypes yet scores -inf
        return np.where(np.isin(np.arange(len(self.classes_)), self._codes), bias, -np.inf)

    def _impossible_mask(self) -> np.ndarray:
        """The linear head's classes without rows yet (declared to ``partial_fit``, or
        whose rows all weighed 0), which score -inf; all False for a state pickled
        before the head kept them."""
        possible = self._state.get("head.possible")
        if possible is None:
            return np.zeros(len(self.classes_), dtype=bool)
        return ~np.asarray(possible, dtype=bool)

    def _impossible_classes(self) -> np.ndarray | None:
        if self.head == "mixture":  # (its scores say so by -inf)
            return None
        impossible = self._impossible_mask()
        return impossible if impossible.any() else None

    def _activation_order(self, X: np.ndarray, A: np.ndarray) -> np.ndarray:
        if self.similarity != "rbf":
            return A
        # exp(-d / width) underflows to 0 far from every prototype (projection=None,
        # a query 100 away from iris): tied at 0, rank_by="activation" listed
        # prototype 0, not the nearest. Minus the squared distance orders alike.
        return underflow_order(A, lambda rows: self._minus_pooled_distances(X[rows]))

    def _minus_pooled_distances(self, X: np.ndarray) -> np.ndarray:
        """``_activation_order``'s key of rows ``X``: minus their pooled distances; -inf
        for a row without a real token, whose similarity is 0 by definition, not by
        underflow (its placeholder distance of 1 ranked it, in prototype_neighbors,
        above every real row whose similarity underflowed)."""
        out = -np.asarray(self._run("pooled_distances", X), dtype=np.float64)
        if self.n_tokens:
            out[~unpack_tokens(X, self.n_tokens)[1].any(axis=1)] = -np.inf
        return out

    @property
    def _contributions_are_own_class(self) -> bool:
        return self.head == "mixture"

    def _own_class_contributions(self, A: np.ndarray):
        if self.head != "mixture":
            return None
        head = self._inference_network().head
        with torch.no_grad(), cpu_default():  # (the inference network is on the CPU)
            terms, r = head.parts(torch.from_numpy(np.asarray(A, dtype=np.float64)))
            codes = self._codes
            # (a copy of codes: read-only where joblib memory-mapped it, which torch warns about)
            return (r * terms[:, torch.as_tensor(np.array(codes))]).numpy(), codes

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # (class weights weigh the rows of a class: a multi-label row has several)
        tags.classifier_tags.multi_label = self.class_weight is None
        return tags


def _center_label_biases(net: ProtoNetwork, X: np.ndarray, T: np.ndarray) -> None:
    """Multi-label: start each label's bias at its prior log-odds minus its mean score.

    Each label is a sigmoid of its own mixture score, ``tau * logsumexp`` of
    cosines over its prototypes, which starts far above 0 for every label
    (every row is similar to some prototype of each label); a softmax ignores
    that common shift, a sigmoid does not: every label started near
    probability 1 and 30 epochs did not undo it (make_multilabel_classification,
    4 labels: per-label accuracy 0.60 against LogisticRegression's 0.79).

    The bias enters the logits divided by the temperature, so it is the
    centred logit times the temperature (a fixed ``T = 0.1`` started every
    label at ``(target - mean) / T``, far below 0 for positive mean scores:
    multi-label iris predicted no label at all).
    """
    rows = np.linspace(0, len(X) - 1, min(len(X), 2000)).astype(np.intp)
    # in chunks (2,000 token rows at once were (2000 * n_tokens, K))
    width = prototype_row_elements(X.shape[1], len(net.prototypes), net.n_tokens)
    with torch.no_grad():
        net.head.bias.zero_()
        dev = net.head.bias.device
        scores = torch.cat(
            [
                net(torch.as_tensor(X[rows[s]], dtype=torch.float32, device=dev))[0]
                for s in chunk_slices(len(rows), width)
            ]
        )
        prior = np.clip(np.asarray(T, dtype=np.float64).mean(0), 1e-3, 1 - 1e-3)
        target = torch.as_tensor(np.log(prior / (1 - prior)), dtype=scores.dtype, device=dev)
        net.head.bias.copy_((target - scores.mean(0)) * net.head.temperature)


def _with_drift_penalty(loss, net: ProtoNetwork, weight: float):
    """``loss`` plus ``weight`` times the latent rows' drift from ``net``'s map as it is now."""
    if net.latent_map is None:  # no map: nothing can drift
        return loss
    start = copy.deepcopy(net.latent_map).eval()
    for p in start.parameters():
        p.requires_grad_(False)

    def penalised(xb, tb, wb):
        drift = latent_drift(net.latent(xb), start(xb))
        return loss(xb, tb, wb) + weight * weighted_mean(drift, wb)

    return penalised
