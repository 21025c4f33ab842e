"""ProtoClassifier: learned prototypes that are real training cases."""

from __future__ import annotations

import time
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import expit
from sklearn.base import _fit_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target

from ._base import BasePrototypeClassifier, chunk_slices, distinct_nearest, kmeans_prototypes
from ._training import TorchTrainingMixin, resolve_device, to_tensor, train, weighted_accuracy

__all__ = ["ProtoClassifier"]

_LOG_EPS = 1e-4  # ProtoPNet's epsilon in log((d + 1) / (d + eps))
# the last-layer refit has converged when no gradient entry exceeds this
# (scikit-learn's LogisticRegression uses tol=1e-4 the same way with L-BFGS)
_LAST_LAYER_GTOL = 1e-4


# --------------------------------------------------------------------------
# The torch model
# --------------------------------------------------------------------------
class _ProtoNet(torch.nn.Module):
    """Projection head, prototypes, similarity and class-connection layer.

    ``latent`` maps inputs of shape ``(..., n_features)`` to ``(..., dim)``;
    ``distances`` returns ``(..., n_prototypes)``. An input with a patch axis
    ``(n, n_patches, n_features)`` is pooled by the minimum distance over
    patches (ProtoPNet's part prototypes) in :meth:`pooled_distances`.
    """

    def __init__(self, head, prototypes, last, similarity, width, temperature=1.0):
        super().__init__()
        self.temperature = temperature
        self.head = head
        self.prototypes = torch.nn.Parameter(prototypes)
        self.last = torch.nn.Parameter(last)
        self.similarity = similarity
        self.width = width

    def latent(self, x):
        return x if self.head is None else self.head(x)

    def distances(self, z):
        p = self.prototypes
        if self.similarity == "cosine":
            zn = torch.nn.functional.normalize(z, dim=-1)
            pn = torch.nn.functional.normalize(p, dim=-1)
            return 1.0 - zn @ pn.T
        d = (z * z).sum(-1, keepdim=True) - 2.0 * z @ p.T + (p * p).sum(-1)
        return d.clamp_min(0.0)

    def pooled_distances(self, x):
        d = self.distances(self.latent(x))
        return d if d.dim() == 2 else d.min(dim=1).values

    def similarities(self, d):
        if self.similarity == "log":
            return torch.log((d + 1.0) / (d + _LOG_EPS))
        if self.similarity == "rbf":
            return torch.exp(-d / self.width)
        return 1.0 - d  # cosine similarity

    def forward(self, x):
        d = self.pooled_distances(x)
        s = self.similarities(d)
        return (s @ self.last) / self.temperature, d, s


def _make_head(kind, n_features, dim, rng, bounded, dtype=torch.float32):
    """Projection head with weights drawn from ``rng`` (deterministic).

    ``bounded`` ends the head in a sigmoid, as ProtoPNet's add-on layers do,
    so latent vectors lie in ``[0, 1]^dim`` and distances are at most ``dim``:
    with a distance-based similarity the separation cost is otherwise
    unbounded below, and training can blow the latent space up instead of
    separating the classes.
    """
    if kind is None:
        return None

    def linear(n_in, n_out):
        layer = torch.nn.Linear(n_in, n_out)
        bound = 1.0 / np.sqrt(n_in)
        with torch.no_grad():
            layer.weight.copy_(
                torch.as_tensor(rng.uniform(-bound, bound, (n_out, n_in)), dtype=dtype)
            )
            layer.bias.zero_()
        return layer

    layers = [linear(n_features, dim)]
    if kind == "mlp":
        layers += [torch.nn.ReLU(), linear(dim, dim)]
    if bounded:
        layers.append(torch.nn.Sigmoid())
    return torch.nn.Sequential(*layers)


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------
class ProtoClassifier(TorchTrainingMixin, BasePrototypeClassifier):
    """Prototype classifier trained with the ProtoPNet objective; every prototype a real case.

    Each class (or label) gets ``n_prototypes_per_class`` prototypes ``p_k``
    in a latent space ``z = h(x)`` (``h`` is the identity, or a learned
    ``projection`` head). A sample's similarity to prototype ``k`` is computed
    from the squared distance ``d_k = ||h(x) - p_k||^2``:

    * ``"log"`` (ProtoPNet): ``s_k = log((d_k + 1) / (d_k + 1e-4))``;
    * ``"rbf"``: ``s_k = exp(-d_k / width)``;
    * ``"cosine"``: ``s_k = cos(h(x), p_k)`` (``d_k = 1 - s_k``);

    and the class scores (logits) are ``score_c = sum_k s_k W[k, c] / T``, with the
    class-connection matrix ``W`` initialised to +1 for a prototype's own class
    and -0.5 elsewhere. Training minimises, on mini-batches with Adam,

    .. math::

        \\mathrm{CE} + \\lambda_{clst} \\mathrm{Clst} - \\lambda_{sep} \\mathrm{Sep}
        + \\lambda_{1} \\lVert W \\odot (1 - I) \\rVert_1

    where Clst is the mean over samples of the distance to the nearest
    own-class prototype, Sep the mean distance to the nearest other-class
    prototype and ``I`` the prototype-class identity (ProtoPNet's defaults
    0.8, 0.08, 1e-4).

    ``prototype_kind`` follows ST-ProtoPNet. *Trivial* prototypes (ProtoPNet's)
    add a discrimination loss ``mean_{c != c'} max_{k, k'} <p_ck, p_c'k'>``
    on unit-normalised prototypes, pushing even the closest pair of
    different classes apart; *support* prototypes add the closeness loss
    ``-mean_{c != c'} min_{k, k'} <p_ck, p_c'k'>``, pulling prototypes of
    different classes toward the decision boundary, and use the stronger
    separation weight ``support_separation_weight`` (0.48). With ``"both"``
    the model has one set of each (each with its own ``W`` block) and the
    logits are their sum.

    After training, each prototype is *projected* ("push"): replaced by the
    latent vector of the nearest training sample of its own class (prototypes
    of one class go to distinct samples, closest pairs first). So every
    prototype *is* a real case: ``prototype_sample_indices_[k]`` is its row in
    the training ``X``, and ``history_`` records accuracy before and after
    projection. Projection and refit use every row passed to ``fit``: with
    early stopping, the held-out split only chooses the epoch of training.

    Finally ``W`` alone is refit with prototypes and head fixed (ProtoPNet's
    last-layer stage; also without projection). With ``s_i`` the similarities
    of sample ``i`` and ``G`` the prototypes' similarities to each other
    (``G[k, l] = s(p_k, p_l)``, made positive semi-definite by clipping its
    eigenvalues; the identity for the log similarity, see below), this
    minimises the convex objective

    .. math::

        \\frac{1}{\\sum_i w_i} \\Big( \\sum_i w_i \\mathrm{CE}(s_i W / T, y_i)
        + \\frac{\\alpha}{2} \\sum_c \\frac{W_{:c}^\\top G W_{:c}}{T^2} \\Big)
        + \\lambda_{1} \\sum_{k, c \\ne c_k} \\sqrt{W_{kc}^2 + 10^{-8}}

    full-batch with L-BFGS (``last_layer_max_iter`` iterations). For the
    cosine and rbf similarities, which are kernels, the ``alpha`` term is the
    squared RKHS norm of each class score ``f_c(x) = sum_k s(x, p_k) W[k, c] / T``
    -- the regulariser of a kernel machine with the prototypes as its basis.
    It penalises the function, not the coordinates ``W``, so
    correlated prototypes (near-duplicate cases of one class) do not distort
    the fit: with cosine similarity and no head this stage reaches the
    accuracy of a logistic-regression probe with ``C = 1 / alpha``. The log
    similarity is no bounded kernel (``s(p, p) = log(1 / 1e-4) = 9.2`` while
    a sample at squared distance ``d`` gets about ``1 / d``): its RKHS norm is
    dominated by the spike at each prototype and over-regularised the refit
    by orders of magnitude (standardised digits: training accuracy 0.85 before
    the refit, 0.54 after). For it ``G = I``: ridge on ``W``, the similarities
    taken as features. The smoothed L1 term (ProtoPNet's, on wrong-class
    connections) trades a little accuracy for explanations in which a
    class's score comes from its own prototypes.

    With a 2-D indicator ``y`` (multi-label), each label gets its own
    prototypes, the outputs are independent sigmoids of the logits and
    ``predict`` returns an indicator matrix (logit > 0).

    Parameters
    ----------
    n_prototypes_per_class : int, default=3
        Prototypes per class (per branch with ``prototype_kind="both"``).
        Initialised by class-wise k-means++ (seeded by ``random_state``). A
        class with fewer samples than prototypes starts from its samples,
        repeated and jittered by 1e-3 times the data's standard deviation.
    projection : {None, "linear", "mlp"}, default=None
        Learned head ``h``: none (prototypes live in the input space), one
        linear layer, or linear-ReLU-linear, trained jointly with the
        prototypes. With the distance-based similarities ("log", "rbf") the
        head ends in a sigmoid, as ProtoPNet's add-on layers do: the latent
        space must be bounded, or the separation cost rewards blowing it up
        without limit. The cosine similarity is scale-invariant, so its head
        is the plain linear map or MLP.
    projection_dim : int, default=None
        Output size of the head (default: ``n_features``).
    similarity : {"log", "rbf", "cosine"}, default="log"
        Similarity from distance, see above.
    rbf_width : float or "auto", default="auto"
        ``width`` of the ``"rbf"`` similarity; "auto" is the mean squared
        distance from a training sample to its nearest initial prototype.
    temperature : float > 0, default=1.0
        The logits are ``s @ W / temperature``. Cosine similarities lie in
        [-1, 1], so a small temperature (e.g. 0.1, the scale of normalised-
        softmax classifiers) lets the model become confident early in
        training. Explanations include it in each contribution
        (``s_k * W[k, c] / temperature``).
    prototype_kind : {"trivial", "support", "both"}, default="trivial"
        ST-ProtoPNet prototype type, see above.
    cluster_weight, separation_weight, l1_weight : float, default=0.8, 0.08, 1e-4
        ProtoPNet's loss weights.
    support_separation_weight : float, default=0.48
        Separation weight of support prototypes.
    closeness_weight, discrimination_weight : float, default=1.0
        Weights of the ST-ProtoPNet closeness (support) and discrimination
        (trivial) losses.
    project : bool, default=True
        Project prototypes onto training samples after training.
    push_every : int, default=None
        Also snap the prototypes onto their nearest training samples every
        ``push_every`` epochs during training (ProtoPNet pushes periodically),
        so that training continues from real cases and the final projection
        costs less accuracy. None: only the final projection.
    alpha : float >= 0, default=0.1
        Strength of the RKHS-norm penalty in the last-layer refit (see
        above; the inverse of logistic regression's ``C``).
    last_layer_max_iter : int, default=200
        L-BFGS iterations of the last-layer refit; 0 skips the refit.
    max_epochs : int, default=100
        Maximum number of epochs (passes over the training data).
    batch_size : int, default=256
        Mini-batch size.
    learning_rate : float, default=1e-2
        Adam learning rate (the last layer after projection uses a tenth).
    weight_decay : float, default=0.0
        Adam weight decay of the head.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data (stratified when every
        class can be), stop when the loss on it has not dropped by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the parameters of the best
        epoch. Without it, the same rule is applied to the training loss.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    class_weight : dict, "balanced" or None, default=None
        Weights of classes in the loss, as in scikit-learn.
    warm_start : bool, default=False
        Continue from the fitted parameters when ``fit`` is called again.
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where training runs. Fitted parameters are stored as numpy arrays and
        prediction runs on the CPU, so a model trained on a GPU predicts
        anywhere after pickling.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling: fits are bit-for-bit repeatable on
        the CPU for a fixed seed.
    verbose : int, default=0
        Print per-epoch loss and accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels (``arange(n_labels)`` for multi-label ``y``).
    prototypes_ : ndarray of shape (n_prototypes, dim)
        Prototype vectors in the latent space (the input space when
        ``projection=None``; then, after projection, each equals a training
        row of its class).
    prototype_labels_ : ndarray of shape (n_prototypes,)
        Class of each prototype.
    prototype_kinds_ : ndarray of shape (n_prototypes,)
        ``"trivial"`` or ``"support"`` for each prototype.
    prototype_sample_indices_ : ndarray of shape (n_prototypes,)
        Training row each prototype was projected onto (-1 if not projected).
    last_layer_ : ndarray of shape (n_prototypes, n_classes)
        Class-connection weights ``W``.
    history_ : dict
        Per-epoch ``loss``, ``train_score`` (weighted accuracy), ``val_loss``
        and ``val_score`` (with early stopping), ``seconds``, and
        ``accuracy_before_projection`` (on the rows trained on, and
        ``val_accuracy_before_projection`` on the early-stopping split) and
        ``accuracy_after_projection`` (on all rows, after the refit); for
        the last-layer refit ``last_layer_loss`` (per L-BFGS evaluation),
        ``last_layer_seconds``, ``last_layer_n_iter``,
        ``last_layer_max_gradient`` and ``last_layer_converged``.
    loss_curve_ : list of float
        Training loss per epoch.
    n_iter_ : int
        Number of epochs run (over all ``fit``/``partial_fit`` calls).
    n_features_in_ : int
        Number of features seen during fit.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import ProtoClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = ProtoClassifier(n_prototypes_per_class=2, max_epochs=30, random_state=0)
    >>> clf = clf.fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> bool((clf.prototypes_ == X[clf.prototype_sample_indices_]).all())
    True
    """

    _pairwise_name = "similarity"
    _bias_name = "bias"

    _parameter_constraints: dict = {
        "n_prototypes_per_class": [Interval(Integral, 1, None, closed="left")],
        "projection": [None, StrOptions({"linear", "mlp"})],
        "projection_dim": [None, Interval(Integral, 1, None, closed="left")],
        "similarity": [StrOptions({"log", "rbf", "cosine"})],
        "rbf_width": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "prototype_kind": [StrOptions({"trivial", "support", "both"})],
        "cluster_weight": [Interval(Real, 0, None, closed="left")],
        "separation_weight": [Interval(Real, 0, None, closed="left")],
        "l1_weight": [Interval(Real, 0, None, closed="left")],
        "support_separation_weight": [Interval(Real, 0, None, closed="left")],
        "closeness_weight": [Interval(Real, 0, None, closed="left")],
        "discrimination_weight": [Interval(Real, 0, None, closed="left")],
        "project": ["boolean"],
        "push_every": [None, Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "last_layer_max_iter": [Interval(Integral, 0, None, closed="left")],
        "warm_start": ["boolean"],
        **TorchTrainingMixin._training_constraints,
    }

    def __init__(
        self,
        n_prototypes_per_class=3,
        *,
        projection=None,
        projection_dim=None,
        similarity="log",
        rbf_width="auto",
        temperature=1.0,
        prototype_kind="trivial",
        cluster_weight=0.8,
        separation_weight=0.08,
        l1_weight=1e-4,
        support_separation_weight=0.48,
        closeness_weight=1.0,
        discrimination_weight=1.0,
        project=True,
        push_every=None,
        alpha=0.1,
        last_layer_max_iter=200,
        max_epochs=100,
        batch_size=256,
        learning_rate=1e-2,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
        warm_start=False,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_prototypes_per_class = n_prototypes_per_class
        self.projection = projection
        self.projection_dim = projection_dim
        self.similarity = similarity
        self.rbf_width = rbf_width
        self.temperature = temperature
        self.prototype_kind = prototype_kind
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
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ targets
    def _encode_targets(self, y, *, first: bool):
        """Integer codes (single-label) or a float indicator matrix (multi-label)."""
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            if type_of_target(y) != "multilabel-indicator":
                raise ValueError("A 2-D y must be a multi-label indicator matrix of 0/1 values.")
            if first:
                self.classes_ = np.arange(y.shape[1])
                self._multilabel = True
            elif not self._multilabel or y.shape[1] != len(self.classes_):
                raise ValueError("y does not match the label layout seen in the first fit.")
            return y.astype(np.float32)
        if first:
            self._multilabel = False
        return y

    # ------------------------------------------------------------ fitting
    def _build(self, X, T, rng):
        """Initial torch model: head, k-means prototypes, +1/-0.5 last layer."""
        n_classes = len(self.classes_)
        n_features = X.shape[1]
        dim = self.projection_dim or n_features
        head = _make_head(self.projection, n_features, dim, rng, self._bounded_head)
        with torch.no_grad():
            Z = X if head is None else head(to_tensor(X, torch.device("cpu"))).numpy()
        kinds = ["trivial", "support"] if self.prototype_kind == "both" else [self.prototype_kind]
        k = self.n_prototypes_per_class
        protos, labels = [], []
        for _ in kinds:
            for c in range(n_classes):
                members = Z[T[:, c] > 0] if self._multilabel else Z[c == T]
                protos.append(kmeans_prototypes(members, Z, k, rng))
                labels.append(np.full(k, c))
        P = np.concatenate(protos).astype(np.float32)
        labels = np.concatenate(labels)
        self._kinds = np.repeat(kinds, n_classes * k)
        identity = np.eye(n_classes, dtype=np.float32)[labels]
        last = np.where(identity > 0, 1.0, -0.5).astype(np.float32)
        width = 1.0
        if self.similarity == "rbf":
            if self.rbf_width == "auto":
                d = (
                    ((Z[:, None, :] - P[None, :, :]) ** 2).sum(-1).min(1)
                    if len(Z) * len(P) < 2e7
                    else None
                )
                width = (
                    float(np.mean(d))
                    if d is not None and np.mean(d) > 0
                    else float(Z.var() * Z.shape[1] or 1.0)
                )
            else:
                width = float(self.rbf_width)
        net = _ProtoNet(
            head,
            torch.as_tensor(P),
            torch.as_tensor(last),
            self.similarity,
            width,
            float(self.temperature),
        )
        return net, labels

    def _loss_fn(self, net, labels):
        """Batch loss of the ProtoPNet / ST-ProtoPNet objective."""
        dev = net.prototypes.device
        n_classes = len(self.classes_)
        proto_labels = torch.as_tensor(labels, device=dev)
        identity = torch.nn.functional.one_hot(proto_labels, n_classes).float()
        blocks = [
            (kind, torch.as_tensor(np.flatnonzero(self._kinds == kind), device=dev))
            for kind in np.unique(self._kinds)
        ]
        sep_weight = {"trivial": self.separation_weight, "support": self.support_separation_weight}
        st_weight = {"trivial": self.discrimination_weight, "support": self.closeness_weight}
        k = self.n_prototypes_per_class
        multilabel = self._multilabel

        def loss(xb, tb, wb):
            logits, d, _ = net(xb)
            if multilabel:
                ce = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, tb, reduction="none"
                ).mean(1)
                own = tb[:, proto_labels] > 0
            else:
                ce = torch.nn.functional.cross_entropy(logits, tb, reduction="none")
                own = proto_labels[None, :] == tb[:, None]
            wsum = wb.sum().clamp_min(1e-12)
            total = (ce * wb).sum() / wsum
            big = d.detach().max() + 1.0
            has_own, has_other = own.any(1), (~own).any(1)
            clst = torch.where(own, d, big).min(1).values
            total = total + self.cluster_weight * (clst * wb * has_own).sum() / wsum
            for kind, idx in blocks:
                if sep_weight[kind]:
                    sep = torch.where(own[:, idx], big, d[:, idx]).min(1).values
                    total = total - sep_weight[kind] * (sep * wb * has_other).sum() / wsum
                if st_weight[kind]:
                    total = total + st_weight[kind] * _st_loss(
                        net.prototypes[idx], n_classes, k, kind
                    )
            if self.l1_weight:
                total = total + self.l1_weight * (net.last * (1 - identity)).abs().sum()
            return total

        return loss

    def _score_fn(self, net):
        """Weighted accuracy (subset accuracy for multi-label) of the current model.

        Weighted by sample and class weights, like the loss, so early stopping
        follows the objective being optimised.
        """

        def score(X, T, w=None):
            logits = self._logits(net, X)
            if self._multilabel:
                hit = np.all((logits > 0) == (T > 0), axis=1)
            else:
                hit = logits.argmax(1) == T
            return weighted_accuracy(hit, w)

        return score

    @staticmethod
    def _logits(net, X):
        dev = net.prototypes.device
        out = []
        with torch.no_grad():
            for s in chunk_slices(len(X), max(X.shape[1], net.prototypes.shape[0])):
                out.append(net(to_tensor(X[s], dev))[0].cpu().numpy())
        return np.concatenate(out) if out else np.empty((0, net.last.shape[1]))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> ProtoClassifier:
        """Train prototypes, head and last layer; then project the prototypes.

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
        warm = self.warm_start and hasattr(self, "_state")
        X, y = self._validate_proto_data(X, y, reset=not warm)
        T = self._prepare_targets(y, first=not warm)
        w = self._training_weights(T, sample_weight, X, multilabel=self._multilabel)
        rng = check_random_state(self.random_state)
        fit_rows, val_rows = self._early_stopping_split(T, rng, multilabel=self._multilabel)
        X32 = X.astype(np.float32, copy=False)
        X_fit, T_fit, w_fit = X32[fit_rows], T[fit_rows], w[fit_rows]
        X_val = None if val_rows is None else X32[val_rows]
        T_val = None if val_rows is None else T[val_rows]
        w_val = None if val_rows is None else w[val_rows]
        if warm:
            net, labels = self._net(device=resolve_device(self.device)), self.prototype_labels_
            history = self.history_
        else:
            net, labels = self._build(X_fit, T_fit, rng)
            net = net.to(resolve_device(self.device))
            history = {}
            self.n_iter_ = 0
        before = len(history.get("loss", []))

        def periodic_push(epoch):
            if self.project and self.push_every and epoch % self.push_every == 0:
                self._snap(net, labels, X_fit, T_fit)

        history = train(
            net,
            list(net.parameters()),
            self._loss_fn(net, labels),
            X_fit,
            T_fit,
            w_fit,
            self._training_config(self.max_epochs, "fit"),
            rng,
            score=self._score_fn(net),
            X_val=X_val,
            targets_val=T_val,
            weights_val=w_val,
            history=history,
            on_epoch_end=periodic_push,
        )
        self.n_iter_ += len(history["loss"]) - before
        self._finish(net, labels, X_fit, T_fit, history, X_val, T_val, X32, T, w, X_exact=X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        classes: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> ProtoClassifier:
        """One pass (epoch) of training over the given batch.

        The first call fixes the classes (``classes`` is required then, unless
        ``y`` is multi-label) and initialises the prototypes from this batch
        (a class absent from it starts at the batch mean, jittered).
        Prototypes are not projected by ``partial_fit``; call
        :meth:`project_prototypes` when the stream is done.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        classes : array-like of shape (n_classes,), default=None
            All classes; required on the first call for single-label ``y``.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : ProtoClassifier
        """
        first = not hasattr(self, "_state")
        X, y = self._validate_proto_data(X, y, reset=first)
        if first:
            if np.asarray(y).ndim == 1 or np.asarray(y).shape[1] == 1:
                if classes is None:
                    raise ValueError("classes must be passed on the first call to partial_fit.")
                self.classes_ = np.unique(np.asarray(classes))
                self._classes_fixed = True
            self.n_iter_ = 0
            self.history_ = {}
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes={np.unique(classes)!r} is not the same as classes_={self.classes_!r}."
            )
        T = self._prepare_targets(y, first=first)
        w = self._training_weights(T, sample_weight, X, multilabel=self._multilabel)
        X = X.astype(np.float32, copy=False)
        rng = check_random_state(self.random_state)
        if first:
            net, labels = self._build(X, T, rng)
            net = net.to(resolve_device(self.device))
        else:
            net, labels = self._net(device=resolve_device(self.device)), self.prototype_labels_
            rng = np.random.RandomState(rng.randint(2**31 - 1) + self.n_iter_)
        history = train(
            net,
            list(net.parameters()),
            self._loss_fn(net, labels),
            X,
            T,
            w,
            self._training_config(1, "partial_fit"),
            rng,
            history=self.history_,
        )
        self.n_iter_ += 1
        self._store(net, labels, np.full(len(labels), -1), history)
        return self

    def project_prototypes(
        self, X: ArrayLike, y: ArrayLike, sample_weight=None
    ) -> ProtoClassifier:
        """Project the prototypes onto (X, y) and retrain the last layer.

        Each prototype becomes the latent vector of the nearest sample of its
        own class in ``X``; ``prototype_sample_indices_`` then refers to rows
        of this ``X``. ``fit`` does this itself when ``project=True``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : ProtoClassifier
        """
        X, y = self._validate_proto_data(X, y, reset=False)
        T = self._prepare_targets(y, first=False)
        w = self._training_weights(T, sample_weight, X, multilabel=self._multilabel)
        net = self._net(device=resolve_device(self.device))
        self._push(
            net, self.prototype_labels_, X.astype(np.float32), T, w, self.history_, X_exact=X
        )
        return self

    # ------------------------------------------------- projection ("push")
    def _finish(self, net, labels, X_fit, T_fit, history, X_val, T_val, X, T, w, X_exact):
        """Record accuracy before projection, then project and refit on *all* rows.

        The early-stopping split only chooses the epoch of the joint training:
        the projection may pick any training row and the convex last-layer
        refit (regularised by ``alpha``) uses every row, as a linear probe would.
        """
        score = self._score_fn(net)
        history["accuracy_before_projection"] = score(X_fit, T_fit)
        if X_val is not None:
            history["val_accuracy_before_projection"] = score(X_val, T_val)
        if self.project:
            self._push(net, labels, X, T, w, history, X_exact=X_exact)
        else:
            self._fit_last_layer(net, labels, X, T, w, history)
            self._store(net, labels, np.full(len(labels), -1), history)

    def _snap(self, net, labels, X, T):
        """Move every prototype onto the latent vector of its nearest own-class row of X.

        Prototypes of one class go to *distinct* rows while the class has
        enough rows (closest pairs first), so no two prototypes become the
        same case. Returns the row index of each prototype (-1 where its class
        has no row).
        """
        dev = net.prototypes.device
        with torch.no_grad():
            Z = np.concatenate(
                [
                    net.latent(to_tensor(X[s], dev)).cpu().numpy()
                    for s in chunk_slices(len(X), max(X.shape[1], net.prototypes.shape[0]))
                ]
            )
            P = net.prototypes.detach().cpu().numpy()
        indices = np.full(len(labels), -1)
        for c in np.unique(labels):
            protos = np.flatnonzero(labels == c)
            members = np.flatnonzero(T[:, c] > 0) if self._multilabel else np.flatnonzero(c == T)
            if not len(members):
                continue
            if self.similarity == "cosine":
                zn = Z[members] / np.maximum(
                    np.linalg.norm(Z[members], axis=1, keepdims=True), 1e-12
                )
                pn = P[protos] / np.maximum(np.linalg.norm(P[protos], axis=1, keepdims=True), 1e-12)
                dist = -pn @ zn.T
            else:
                dist = ((P[protos][:, None, :] - Z[members][None, :, :]) ** 2).sum(-1)
            indices[protos] = members[distinct_nearest(dist)]
        with torch.no_grad():
            found = torch.as_tensor(indices >= 0, device=dev)
            net.prototypes[found] = torch.as_tensor(Z[indices[indices >= 0]], device=dev)
        return indices

    def _push(self, net, labels, X, T, w, history, X_exact=None):
        indices = self._snap(net, labels, X, T)
        self._fit_last_layer(net, labels, X, T, w, history)
        history["accuracy_after_projection"] = self._score_fn(net)(X, T)
        self._store(net, labels, indices, history, X_exact=X_exact)

    def _fit_last_layer(self, net, labels, X, T, w, history):
        """Refit ``W`` alone (prototypes and head fixed): the convex problem above.

        Full-batch L-BFGS on the precomputed similarities, an
        ``(n_samples, n_prototypes)`` float32 matrix, from ``W = 0`` (the
        problem has one optimum; the trained ``W`` is scaled for no penalty
        and starts far from it). L-BFGS runs until the loss stops changing or
        ``last_layer_max_iter`` iterations; the refit counts as converged when
        the loss stopped changing or no gradient entry exceeds
        ``_LAST_LAYER_GTOL``. Otherwise a ConvergenceWarning is raised, as
        scikit-learn's L-BFGS solvers do. Deterministic.
        """
        if not self.last_layer_max_iter or not len(X):
            return
        dev = net.prototypes.device
        with torch.no_grad():
            S = torch.cat(
                [
                    net(to_tensor(X[s], dev))[2]
                    for s in chunk_slices(len(X), max(X.shape[1], net.prototypes.shape[0]))
                ]
            )
            if self.similarity == "log":  # not a bounded kernel: ridge on W
                G = torch.eye(len(labels), dtype=S.dtype, device=dev)
            else:
                G = net.similarities(net.distances(net.prototypes)).double()
                vals, vecs = torch.linalg.eigh(0.5 * (G + G.T))
                G = ((vecs * vals.clamp_min(0.0)) @ vecs.T).to(S.dtype)
            net.last.zero_()
        targets = (
            to_tensor(T, dev)
            if self._multilabel
            else torch.as_tensor(T, dtype=torch.long, device=dev)
        )
        wt = to_tensor(w, dev)
        wsum = wt.sum().clamp_min(1e-12)
        off = 1.0 - torch.nn.functional.one_hot(
            torch.as_tensor(np.asarray(labels), device=dev), len(self.classes_)
        ).to(S.dtype)
        temperature = net.temperature
        W = net.last
        optimizer = torch.optim.LBFGS(
            [W],
            lr=1.0,
            max_iter=self.last_layer_max_iter,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )
        evaluations = []

        def closure():
            optimizer.zero_grad()
            logits = S @ W / temperature
            if self._multilabel:
                data = torch.nn.functional.binary_cross_entropy_with_logits(
                    logits, targets, reduction="none"
                ).mean(1)
            else:
                data = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            Wt = W / temperature
            loss = ((data * wt).sum() + 0.5 * self.alpha * (Wt * (G @ Wt)).sum()) / wsum
            if self.l1_weight:
                loss = loss + self.l1_weight * torch.sqrt((W * off) ** 2 + 1e-8).sum()
            loss.backward()
            evaluations.append(float(loss.detach()))
            return loss

        start = time.perf_counter()
        optimizer.step(closure)
        n_iter = optimizer.state[W]["n_iter"]
        n_eval = len(evaluations)
        closure()  # the gradient at the final W
        grad_max = float(W.grad.abs().max())
        W.grad = None
        # L-BFGS also stops when the loss or the step stops changing (float32 precision)
        stalled = n_iter < self.last_layer_max_iter and n_eval < self.last_layer_max_iter * 5 // 4
        converged = grad_max <= _LAST_LAYER_GTOL or stalled
        history["last_layer_loss"] = evaluations
        history["last_layer_seconds"] = time.perf_counter() - start
        history["last_layer_n_iter"] = int(n_iter)
        history["last_layer_max_gradient"] = grad_max
        history["last_layer_converged"] = bool(converged)
        if not converged:
            warnings.warn(
                f"The last-layer refit stopped after {n_iter} L-BFGS iterations ({n_eval} "
                f"evaluations; last_layer_max_iter={self.last_layer_max_iter}) before "
                f"converging: largest gradient entry {grad_max:.2g} > {_LAST_LAYER_GTOL:g}. "
                "Increase last_layer_max_iter for the exact optimum.",
                ConvergenceWarning,
            )
        if self.verbose:
            print(
                f"[last layer] {n_iter} L-BFGS iterations, loss "
                f"{evaluations[0]:.5f} -> {evaluations[-1]:.5f}, max |grad| {grad_max:.2g} "
                f"({history['last_layer_seconds']:.2f}s)",
                flush=True,
            )

    # ------------------------------------------------------ fitted state
    def _store(self, net, labels, indices, history, X_exact=None):
        """Keep the fitted parameters as float64 numpy arrays (pickles need no torch state).

        Projected prototypes are recomputed in float64 from the exact training
        rows, so without a head each one *equals* its training row.
        """
        self._state = {
            k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()
        }
        self._width = net.width
        self._temperature = net.temperature
        found = np.flatnonzero(np.asarray(indices) >= 0)
        if X_exact is not None and len(found):
            rows = np.asarray(X_exact, dtype=np.float64)[np.asarray(indices)[found]]
            if self.projection is None:
                latent = rows
            else:
                with torch.no_grad():
                    latent = (
                        self._net_from(self._state, torch.float64)
                        .latent(torch.as_tensor(rows))
                        .numpy()
                    )
            self._state["prototypes"][found] = latent
        self.prototypes_ = self._state["prototypes"]
        self.last_layer_ = self._state["last"]
        self.prototype_labels_ = np.asarray(labels)
        self.prototype_kinds_ = np.asarray(self._kinds)
        self.prototype_sample_indices_ = np.asarray(indices, dtype=np.intp)
        self.history_ = history
        self.loss_curve_ = list(history["loss"])

    def _net(self, device=torch.device("cpu"), dtype=torch.float32):
        """A torch model holding the fitted parameters."""
        return self._net_from(self._state, dtype).to(device=device)

    def _net_from(self, state, dtype):
        P, W = state["prototypes"], state["last"]
        head = _make_head(
            self.projection,
            self.n_features_in_,
            P.shape[1],
            np.random.RandomState(0),
            self._bounded_head,
        )
        net = _ProtoNet(
            head,
            torch.zeros(P.shape),
            torch.zeros(W.shape),
            self.similarity,
            self._width,
            self._temperature,
        )
        net.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})
        return net.to(dtype=dtype)

    @property
    def _bounded_head(self) -> bool:
        """Whether the head ends in a sigmoid (see ``projection``)."""
        return self.similarity != "cosine"

    # ---------------------------------------------------------- validation
    def _validate_proto_data(self, X, y, *, reset):
        y_arr = np.asarray(y)
        multi = y_arr.ndim == 2 and y_arr.shape[1] > 1
        return self._validate_fit_data(X, y, reset=reset, multi_output=multi)

    def _prepare_targets(self, y, *, first):
        y = self._encode_targets(y, first=first)
        if self._multilabel:
            return y
        if first and not getattr(self, "_classes_fixed", False):
            self.classes_ = np.unique(y)
            self._check_two_classes(self.classes_)
        unknown = np.setdiff1d(np.unique(y), self.classes_)
        if unknown.size:
            raise ValueError(f"y contains labels {unknown.tolist()!r} not in classes_.")
        return np.searchsorted(self.classes_, y)

    # ------------------------------------------------------- computations
    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        """Similarity of each sample to every prototype."""
        net = self._net(dtype=torch.float64 if X.dtype == np.float64 else torch.float32)
        with torch.no_grad():
            d = net.pooled_distances(torch.as_tensor(X))
            return net.similarities(d).numpy()

    def _activation(self, S: np.ndarray) -> np.ndarray:
        return S

    def _head(self):
        return self.last_layer_ / self._temperature, np.zeros(len(self.classes_))

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        if not getattr(self, "_multilabel", False):
            return super().decision_function(X)
        X = self._validate_X_predict(X)
        return self._scores(X)

    decision_function.__doc__ = BasePrototypeClassifier.decision_function.__doc__ + (
        "\n        For multi-label ``y``, the logit of every label, (n_samples, n_labels).\n"
    )

    def predict(self, X: ArrayLike) -> np.ndarray:
        if not getattr(self, "_multilabel", False):
            return super().predict(X)
        X = self._validate_X_predict(X)
        return (self._scores(X) > 0).astype(int)

    predict.__doc__ = BasePrototypeClassifier.predict.__doc__ + (
        "\n        For multi-label ``y``, an indicator matrix: logit > 0.\n"
    )

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        if not getattr(self, "_multilabel", False):
            return super().predict_proba(X)
        X = self._validate_X_predict(X)
        return expit(self._scores(X))

    predict_proba.__doc__ = BasePrototypeClassifier.predict_proba.__doc__ + (
        "\n        For multi-label ``y``, independent sigmoids of the logits.\n"
    )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags


def _st_loss(P, n_classes, k, kind):
    """ST-ProtoPNet closeness (support) or discrimination (trivial) loss.

    ``P`` holds ``k`` prototypes per class, class-major; similarities are
    inner products of unit-normalised prototypes.
    """
    Pn = torch.nn.functional.normalize(P, dim=-1)
    G = (Pn @ Pn.T).reshape(n_classes, k, n_classes, k)
    off = ~torch.eye(n_classes, dtype=torch.bool, device=P.device)
    if kind == "support":  # pull the least similar cross-class pair together
        return -G.amin(dim=(1, 3))[off].mean()
    return G.amax(dim=(1, 3))[off].mean()  # push the most similar pair apart
