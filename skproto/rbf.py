"""RBFPrototypeClassifier: an RBF / classification-by-components network with certified robustness."""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import torch
from numpy.typing import ArrayLike
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BasePrototypeClassifier, chunk_slices, distinct_nearest, kmeans_prototypes
from ._training import TorchTrainingMixin, resolve_device, to_tensor, train, weighted_accuracy

__all__ = ["RBFPrototypeClassifier", "certified_accuracy"]

_TINY = 1e-12


# --------------------------------------------------------------------------
# The torch model: every formula once, for training (float32) and prediction
# (the caller's dtype), so the certificate trained against is the one reported.
# --------------------------------------------------------------------------
class _RBFNet(torch.nn.Module):
    """Components, optional linear map Omega, detection, reasoning head, certificate."""

    def __init__(
        self, components, omega, log_sigma, reasoning, labels, head, n_classes, learn_sigma=True
    ):
        super().__init__()
        self.components = torch.nn.Parameter(components)
        self.omega = None if omega is None else torch.nn.Parameter(omega)
        self.log_sigma = torch.nn.Parameter(log_sigma, requires_grad=learn_sigma)
        self.reasoning = None if reasoning is None else torch.nn.Parameter(reasoning)
        self.register_buffer("labels", labels)
        self.head = head  # "positive", "positive_negative" or "nearest"
        self.n_classes = n_classes

    # ------------------------------------------------------------ geometry
    def _map(self, a):
        return a if self.omega is None else a @ self.omega.T

    def squared_distances(self, x):
        """``||Omega (x - w_k)||^2``, (n, K)."""
        z, w = self._map(x), self._map(self.components)
        d2 = (z * z).sum(-1, keepdim=True) - 2.0 * z @ w.T + (w * w).sum(-1)
        return d2.clamp_min(0.0)

    def distances(self, x, smooth=False):
        d2 = self.squared_distances(x)
        # smooth: a finite gradient at a component (training only)
        return torch.sqrt(d2 + _TINY) if smooth else torch.sqrt(d2)

    def sigma(self):
        return torch.exp(self.log_sigma)

    def omega_norm(self):
        """Spectral norm of Omega (1 without a map): the Lipschitz constant of x -> Omega x."""
        if self.omega is None:
            return torch.ones((), dtype=self.components.dtype, device=self.components.device)
        return torch.linalg.matrix_norm(self.omega, ord=2)

    def detections(self, x, smooth=False):
        """Detection probabilities ``d_k = exp(-dist_k / sigma)``, (n, K)."""
        return torch.exp(-self.distances(x, smooth) / self.sigma())

    # ------------------------------------------------------------ head
    def reasoning_weights(self):
        """(r_plus, r_minus), each (K, C): non-negative, summing to one per class."""
        K = self.components.shape[0]
        if self.head == "nearest":
            r = torch.nn.functional.one_hot(self.labels, self.n_classes).to(self.components.dtype)
            return r, torch.zeros_like(r)
        R = torch.softmax(self.reasoning, dim=0)
        if self.head == "positive_negative":
            return R[:K], R[K:]
        return R, torch.zeros_like(R)

    def class_scores(self, d):
        """Class scores ``p_c`` from detections, (n, C)."""
        if self.head == "nearest":  # winner takes all: the best-detected component of each class
            out = torch.zeros(d.shape[0], self.n_classes, dtype=d.dtype, device=d.device)
            return out.scatter_reduce(
                1, self.labels.expand(d.shape[0], -1), d, reduce="amax", include_self=False
            )
        rp, rn = self.reasoning_weights()
        return d @ (rp - rn) + rn.sum(0)

    def log_class_scores(self, x):
        """``log p_c`` without underflow, for the nearest and positive heads, (n, C)."""
        log_d = -self.distances(x) / self.sigma()
        if self.head == "nearest":
            out = torch.full(
                (x.shape[0], self.n_classes), -float("inf"), dtype=log_d.dtype, device=log_d.device
            )
            return out.scatter_reduce(
                1, self.labels.expand(x.shape[0], -1), log_d, reduce="amax", include_self=False
            )
        rp, _ = self.reasoning_weights()
        return torch.logsumexp(log_d[:, :, None] + torch.log(rp)[None], dim=1)

    def forward(self, x):
        return self.class_scores(self.detections(x, smooth=True))

    # ------------------------------------------------------------ certificate
    def certified_radius(self, x, target, smooth=False):
        """Signed lower bound on the L2 perturbation that can make ``target`` lose, (n,).

        Negative when ``target`` does not have the highest score.
        """
        if self.head == "nearest":
            return self._bisector_radius(x, target)
        d = self.detections(x, smooth)
        rp, rn = self.reasoning_weights()
        Dp, Dn = d @ rp, d @ rn  # (n, C)
        rows = torch.arange(len(x), device=x.device)
        a_plus = Dp[rows, target][:, None] + Dn  # terms favouring the target over class j
        a_minus = Dn[rows, target][:, None] + Dp  # terms favouring j
        s = rn.sum(0)
        b = s[target][:, None] - s[None, :]
        tiny = torch.finfo(d.dtype).tiny
        root = torch.sqrt(b * b + 4.0 * a_plus * a_minus)
        # z* = (b + root) / (2 a-) = 2 a+ / (root - b); each form where it is stable
        z = torch.where(
            b >= 0,
            (b + root) / (2.0 * a_minus).clamp_min(tiny),
            2.0 * a_plus / (root - b).clamp_min(tiny),
        )
        z = torch.where(
            torch.nn.functional.one_hot(target, self.n_classes) > 0,
            torch.full_like(z, float("inf")),
            z,
        )
        z_min = z.min(1).values.clamp_min(tiny)
        return self.sigma() * torch.log(z_min) / self.omega_norm()

    def _bisector_radius(self, x, target):
        """``max_{i own} min_{j other} (dist_j^2 - dist_i^2) / (2 ||Omega (w_j - w_i)||)``.

        Works on the target class's own components only, (n, m, K) for ``m``
        components per class, so robust training stays cheap.
        """
        d2 = self.squared_distances(x)  # (n, K)
        u = self._map(self.components)
        gap = torch.cdist(u, u)  # (K, K)
        own_idx = self._own_index()[target]  # (n, m), -1 = padding
        valid = own_idx >= 0
        idx = own_idx.clamp_min(0)
        d2_own = d2.gather(1, idx)  # (n, m)
        num = d2[:, None, :] - d2_own[:, :, None]  # [n, i, j] = d2_j - d2_i
        g = gap[idx]  # (n, m, K)
        tiny = torch.finfo(d2.dtype).tiny
        ratio = torch.where(g > 0, num / (2.0 * g).clamp_min(tiny), torch.zeros_like(num))
        same = (self.labels[None, :] == target[:, None])[:, None, :]  # j of the target class
        ratio = ratio.masked_fill(same, float("inf"))
        inner = ratio.min(2).values.masked_fill(~valid, -float("inf"))
        return inner.max(1).values / self.omega_norm()

    def _own_index(self):
        """(n_classes, m) component indices of each class, padded with -1."""
        labels = self.labels
        counts = torch.bincount(labels, minlength=self.n_classes)
        m = int(counts.max())
        order = torch.argsort(labels, stable=True)
        start = torch.cumsum(counts, 0) - counts
        pos = torch.arange(m, device=labels.device)
        flat = start[:, None] + pos[None, :]
        ok = pos[None, :] < counts[:, None]
        return torch.where(ok, order[flat.clamp_max(len(labels) - 1)], torch.full_like(flat, -1))


# --------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------
class RBFPrototypeClassifier(TorchTrainingMixin, BasePrototypeClassifier):
    """RBF / classification-by-components network with a certified robustness radius.

    Components ``w_k`` (``prototypes_``) live in the input space. A sample is
    compared with them through a proper metric, the Euclidean distance after
    an optional learned linear map ``Omega`` (GMLVQ's relevance matrix, of
    rank ``omega_dim``), ``dist_k(x) = ||Omega (x - w_k)||_2``, and each
    component is *detected* with probability

    .. math::  d_k(x) = \\exp(-\\mathrm{dist}_k(x) / \\sigma).

    The default head (``reasoning="positive_negative"``) is the *stable CBC*
    of Saralajew et al. (AAAI 2025). Class ``c`` has non-negative positive
    and negative reasoning weights ``r+_kc``, ``r-_kc`` over the components,
    a softmax over ``2K`` logits per class so that
    ``sum_k (r+_kc + r-_kc) = 1``, and the class score is

    .. math::  p_c(x) = \\sum_k r^+_{kc} d_k(x) + r^-_{kc} (1 - d_k(x)) \\in [0, 1].

    A component argues *for* class ``c`` by its presence (``r+``) or by its
    absence (``r-``). With ``reasoning="positive"`` only ``r+`` exists (a
    softmax over ``K`` logits per class) and the head is a normalised RBF
    network. ``loss="glvq"`` instead trains a plain nearest-prototype model
    (GLVQ, Sato & Yamada 1996): every component belongs to one class, the
    class score is the detection of the class's nearest component,
    ``p_c = max_{k in c} d_k``, and training minimises the mean of
    ``sigmoid(2 mu)`` with the relative distance
    ``mu = (D+ - D-) / (D+ + D-)`` of the squared distances ``D+``, ``D-`` to
    the nearest correct and nearest wrong component.

    ``decision_function`` returns the scores ``p_c`` and ``predict_proba``
    their normalisation ``p_c / sum_c' p_c'`` (uniform where every score
    underflows to 0), so ``predict`` is the class with the highest ``p_c``.

    **Certificate.** :meth:`certified_radius` returns, per sample, a radius
    ``eps`` such that *no* perturbation ``delta`` with ``||delta||_2 < eps``
    changes the prediction:

    * CBC head (stable CBC, Theorem 1 of the paper): a perturbation of norm
      ``eps`` changes every distance by at most ``L eps`` (``L`` the spectral
      norm of ``Omega``, 1 without it), so with ``z = exp(L eps / sigma)``
      every ``d_k`` stays in ``[d_k / z, d_k z]``. For the predicted class
      ``i`` and any other class ``j``,
      ``p_i - p_j >= A+ / z - A- z + b`` with
      ``A+ = sum_k d_k (r+_ki + r-_kj)``, ``A- = sum_k d_k (r-_ki + r+_kj)``
      and ``b = sum_k r-_ki - sum_k r-_kj``; this stays positive for
      ``z < z*_j = (b + sqrt(b^2 + 4 A+ A-)) / (2 A-)``, so
      ``eps = sigma ln(min_j z*_j) / L``. With positive reasoning alone
      this is ``(sigma / 2L) ln(p_i / max_j p_j)``.
    * Nearest-prototype head (``loss="glvq"``): the prediction cannot change
      while the sample stays on the own side of the bisector between some
      own-class component ``i`` and every other-class component ``j``, so
      ``eps = max_i min_j (dist_j^2 - dist_i^2) / (2 ||Omega (w_j - w_i)|| L)``,
      which is never below the classical hypothesis margin
      ``(dist- - dist+) / (2 L)`` and is attained by the perturbation
      straight to the bisector when each class has one component and
      ``Omega`` is absent.

    ``loss="robust"`` trains the chosen head to enlarge its certificate: the
    mean hinge ``max(0, margin - eps(x, y))`` of the signed radius at the
    true label (negative where misclassified), computed by the same code as
    :meth:`certified_radius`.

    Parameters
    ----------
    n_components : int, default=None
        Number of components. None: one per class. Components are
        initialised by class-wise k-means++ (seeded by ``random_state``), the
        ``n_components`` shared out over the classes as evenly as possible
        (earlier classes first); with fewer components than classes, by
        k-means on all the data (CBC heads; the nearest-prototype head needs
        one per class, and warns and uses ``n_classes`` components instead).
    reasoning : {"positive_negative", "positive", "nearest"}, default=None
        The head: stable CBC with positive and negative reasoning, CBC with
        positive reasoning only (an RBF head), or the nearest-prototype head
        (each component belongs to one class; ``p_c = max_{k in c} d_k``),
        whose bisector certificate is the tighter one. None:
        ``"positive_negative"``, or ``"nearest"`` for ``loss="glvq"`` (which
        accepts no other head).
    loss : {"cbc", "robust", "glvq"}, default="cbc"
        ``"cbc"``: the CBC margin loss ``max(0, max_{j != y} p_j - p_y + margin)``;
        ``"robust"``: the certified-radius hinge above; ``"glvq"``: GLVQ
        (nearest-prototype head).
    margin : float, default=None
        For ``"cbc"``, the score margin (default 0.3); for ``"robust"``, the
        radius aimed for, in input units (default: a quarter of the median
        distance from a training sample to its nearest initial component).
        Stored in ``margin_``.
    sigma : float or "auto", default="auto"
        Initial ``sigma``; "auto": the median distance from a training sample
        to its nearest initial component divided by ``ln 2``, so that such a
        component is detected with probability 1/2.
    learn_sigma : bool, default=True
        Train ``sigma`` (one value shared by all components).
    omega_dim : int, default=None
        Learn a linear map ``Omega`` of shape ``(omega_dim, n_features)``
        before the distance (initialised to the first ``omega_dim``
        principal axes). None: plain Euclidean distance.
    project : bool, default=False
        After training, move every component onto its nearest training row
        (of its own class for ``"glvq"``, of any class for the CBC head;
        distinct rows, closest pairs first), then train the other parameters
        (reasoning, ``sigma``, ``Omega``) for ``project_epochs`` epochs.
        ``prototype_sample_indices_`` gives the rows.
    project_epochs : int, default=10
    max_epochs : int, default=100
    batch_size : int, default=128
    learning_rate : float, default=1e-2
        Adam learning rate.
    weight_decay : float, default=0.0
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the data, stop when its loss has
        not dropped by ``tol`` for ``n_iter_no_change`` epochs and keep the
        best epoch (as in :class:`~skproto.ProtoClassifier`).
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    class_weight : dict, "balanced" or None, default=None
    device : {"cpu", "cuda", "auto"}, default="cpu"
        Where training runs; fitted parameters are float64 numpy arrays and
        prediction runs on the CPU.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation and shuffling (bit-for-bit repeatable on CPU).
    verbose : int, default=0
        Print per-epoch loss and accuracy.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    prototypes_ : ndarray of shape (n_components, n_features)
        The components ``w_k``, in the input space.
    prototype_labels_ : ndarray of shape (n_components,)
        Class of each component: its own class with ``loss="glvq"``; for the
        CBC head the class it reasons most positively for.
    prototype_sample_indices_ : ndarray of shape (n_components,)
        Training row each component was projected onto (-1 if not).
    reasoning_positive_, reasoning_negative_ : ndarray of shape (n_components, n_classes)
        ``r+`` and ``r-`` (zero where absent); per class, their sum over
        components is 1. With ``loss="glvq"`` (no reasoning), ``r+`` is the
        0/1 membership of each component in its class.
    sigma_ : float
        Detection scale ``sigma``.
    omega_ : ndarray of shape (omega_dim, n_features) or None
        The learned map ``Omega``.
    margin_ : float
        Margin used by the loss (see ``margin``).
    history_ : dict
        Per-epoch ``loss``, ``train_score``, ``val_loss``, ``val_score``, ``seconds``.
    loss_curve_ : list of float
    n_iter_ : int
        Epochs run.
    n_features_in_ : int

    See Also
    --------
    certified_accuracy : Fraction of samples classified correctly with a radius above ``eps``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skproto import RBFPrototypeClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = RBFPrototypeClassifier(max_epochs=50, random_state=0).fit(X, y)
    >>> clf.score(X, y) > 0.9
    True
    >>> r = clf.certified_radius(X, y)   # 0 where misclassified
    >>> bool((r >= 0).all())
    True
    >>> p = clf.decision_function(X[:1])
    >>> ex = clf.explain(X[:1])
    >>> bool(np.allclose(ex.scores, p))
    True
    """

    _pairwise_name = "detection probability"
    _bias_name = "bias"

    _parameter_constraints: dict = {
        "n_components": [None, Interval(Integral, 1, None, closed="left")],
        "reasoning": [None, StrOptions({"positive_negative", "positive", "nearest"})],
        "loss": [StrOptions({"cbc", "robust", "glvq"})],
        "margin": [None, Interval(Real, 0, None, closed="left")],
        "sigma": [StrOptions({"auto"}), Interval(Real, 0, None, closed="neither")],
        "learn_sigma": ["boolean"],
        "omega_dim": [None, Interval(Integral, 1, None, closed="left")],
        "project": ["boolean"],
        "project_epochs": [Interval(Integral, 0, None, closed="left")],
        **TorchTrainingMixin._training_constraints,
    }

    def __init__(
        self,
        n_components=None,
        *,
        reasoning=None,
        loss="cbc",
        margin=None,
        sigma="auto",
        learn_sigma=True,
        omega_dim=None,
        project=False,
        project_epochs=10,
        max_epochs=100,
        batch_size=128,
        learning_rate=1e-2,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
        device="cpu",
        random_state=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.reasoning = reasoning
        self.loss = loss
        self.margin = margin
        self.sigma = sigma
        self.learn_sigma = learn_sigma
        self.omega_dim = omega_dim
        self.project = project
        self.project_epochs = project_epochs
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------ fitting
    @property
    def _head_kind(self):
        if self.loss == "glvq" or self.reasoning is None:
            return "nearest" if self.loss == "glvq" else "positive_negative"
        return self.reasoning

    def _build(self, X, T, rng):
        """Initial model: k-means components, Omega, sigma, reasoning logits."""
        n_classes, (n, p) = len(self.classes_), X.shape
        K = n_classes if self.n_components is None else self.n_components
        if self.loss == "glvq" and self.reasoning not in (None, "nearest"):
            raise ValueError(
                f"loss='glvq' trains the nearest-prototype head; got reasoning={self.reasoning!r}."
            )
        if n_classes > K and self._head_kind == "nearest":
            warnings.warn(
                f"The nearest-prototype head needs at least one component per class: "
                f"n_components={K} < {n_classes} classes; using {n_classes} components.",
                UserWarning,
            )
            K = n_classes
        if n_classes <= K:
            counts = np.full(n_classes, K // n_classes) + (np.arange(n_classes) < K % n_classes)
            W = np.concatenate(
                [kmeans_prototypes(X[c == T], X, counts[c], rng) for c in range(n_classes)]
            )
            labels = np.repeat(np.arange(n_classes), counts)
        else:
            W = kmeans_prototypes(X, X, K, rng)
            labels = np.zeros(K, dtype=int)  # CBC: reasoning decides; updated after training
        omega = None
        if self.omega_dim is not None:
            _, _, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
            omega = np.zeros((self.omega_dim, p))
            q = min(self.omega_dim, Vt.shape[0])
            omega[:q] = Vt[:q]
        Z = X if omega is None else X @ omega.T
        U = W if omega is None else W @ omega.T
        nearest = np.sqrt(np.maximum(_sq_dist_min(Z, U), 0.0))
        typical = float(np.median(nearest)) or 1.0
        sigma = typical / np.log(2.0) if self.sigma == "auto" else float(self.sigma)
        if self.margin is not None:
            self.margin_ = float(self.margin)
        else:
            self.margin_ = 0.3 if self.loss == "cbc" else 0.25 * typical
        reasoning = None
        if self._head_kind != "nearest":
            rows = 2 * K if self._head_kind == "positive_negative" else K
            logits = np.zeros((rows, n_classes))
            if n_classes <= K:  # start reasoning positively on a class's own components
                logits[np.arange(K), labels] = np.log(rows)
            reasoning = torch.as_tensor(logits, dtype=torch.float32)
        net = _RBFNet(
            torch.as_tensor(W, dtype=torch.float32),
            None if omega is None else torch.as_tensor(omega, dtype=torch.float32),
            torch.tensor(np.log(sigma), dtype=torch.float32),
            reasoning,
            torch.as_tensor(labels, dtype=torch.long),
            self._head_kind,
            n_classes,
            learn_sigma=self.learn_sigma,
        )
        return net

    def _loss_fn(self, net):
        margin = self.margin_
        kind = self.loss

        def loss(xb, tb, wb):
            if kind == "glvq":
                d2 = net.squared_distances(xb)
                own = net.labels[None, :] == tb[:, None]
                big = d2.detach().max() + 1.0
                d_plus = torch.where(own, d2, big).min(1).values
                d_minus = torch.where(own, big, d2).min(1).values
                mu = (d_plus - d_minus) / (d_plus + d_minus).clamp_min(_TINY)
                per = torch.sigmoid(2.0 * mu)
            elif kind == "robust":
                per = torch.relu(margin - net.certified_radius(xb, tb, smooth=True))
            else:
                p = net(xb)
                rows = torch.arange(len(xb), device=xb.device)
                p_true = p[rows, tb]
                p_other = (
                    p.masked_fill(torch.nn.functional.one_hot(tb, p.shape[1]) > 0, -float("inf"))
                    .max(1)
                    .values
                )
                per = torch.relu(p_other - p_true + margin)
            return (per * wb).sum() / wb.sum().clamp_min(_TINY)

        return loss

    def _score_fn(self, net):
        def score(X, T, w=None):
            dev = net.components.device
            with torch.no_grad():
                pred = (
                    np.concatenate(
                        [
                            net.class_scores(net.detections(to_tensor(X[s], dev)))
                            .argmax(1)
                            .cpu()
                            .numpy()
                            for s in chunk_slices(len(X), max(X.shape[1], net.components.shape[0]))
                        ]
                    )
                    if len(X)
                    else np.empty(0, int)
                )
            return weighted_accuracy(pred == T, w)

        return score

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None
    ) -> RBFPrototypeClassifier:
        """Train components, reasoning, ``sigma`` (and ``Omega``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self : RBFPrototypeClassifier
        """
        X, y = self._validate_fit_data(X, y, reset=True)
        self.classes_, T = np.unique(y, return_inverse=True)
        self._check_two_classes(self.classes_)
        w = self._training_weights(T, sample_weight, X)
        rng = check_random_state(self.random_state)
        fit_rows, val_rows = self._early_stopping_split(T, rng)
        X32 = X.astype(np.float32, copy=False)
        X_fit, T_fit, w_fit = X32[fit_rows], T[fit_rows], w[fit_rows]
        val = (
            {}
            if val_rows is None
            else dict(X_val=X32[val_rows], targets_val=T[val_rows], weights_val=w[val_rows])
        )
        device = resolve_device(self.device)
        net = self._build(X[fit_rows].astype(np.float64), T_fit, rng).to(device)
        history = train(
            net,
            [p for p in net.parameters() if p.requires_grad],
            self._loss_fn(net),
            X_fit,
            T_fit,
            w_fit,
            self._training_config(self.max_epochs, "fit"),
            rng,
            score=self._score_fn(net),
            **val,
        )
        self.n_iter_ = len(history["loss"])
        indices = np.full(net.components.shape[0], -1)
        if self.project:
            indices = self._snap(net, X_fit, T_fit)
            if self.project_epochs:
                params = [
                    p
                    for name, p in net.named_parameters()
                    if name != "components" and p.requires_grad
                ]
                history["projection"] = train(
                    net,
                    params,
                    self._loss_fn(net),
                    X_fit,
                    T_fit,
                    w_fit,
                    self._training_config(self.project_epochs, "after projection"),
                    rng,
                    score=self._score_fn(net),
                )
            indices = np.where(indices >= 0, fit_rows[np.maximum(indices, 0)], -1)
        self._store(net, history, indices, X)
        return self

    def _snap(self, net, X, T):
        """Move each component onto its nearest training row (distinct rows, closest first)."""
        with torch.no_grad():
            dev = net.components.device
            d2 = np.concatenate(
                [
                    net.squared_distances(to_tensor(X[s], dev)).cpu().numpy()
                    for s in chunk_slices(len(X), max(X.shape[1], net.components.shape[0]))
                ]
            )  # (n, K)
        K = d2.shape[1]
        indices = np.full(K, -1)
        if self._head_kind == "nearest":
            labels = net.labels.cpu().numpy()
            for c in np.unique(labels):
                comps, members = np.flatnonzero(labels == c), np.flatnonzero(c == T)
                indices[comps] = members[distinct_nearest(d2[members][:, comps].T)]
        else:
            indices = distinct_nearest(d2.T)
        with torch.no_grad():
            net.components.copy_(to_tensor(X[indices], dev))
        return indices

    def _store(self, net, history, indices, X):
        self._state = {
            k: v.detach().cpu().numpy().astype(np.float64) for k, v in net.state_dict().items()
        }
        found = np.flatnonzero(indices >= 0)
        if len(found):  # projected components equal their rows exactly (caller's precision)
            self._state["components"][found] = np.asarray(X, dtype=np.float64)[indices[found]]
        net64 = self._net()
        with torch.no_grad():
            rp, rn = (r.numpy() for r in net64.reasoning_weights())
        self.prototypes_ = self._state["components"]
        self.reasoning_positive_, self.reasoning_negative_ = rp, rn
        self.sigma_ = float(np.exp(self._state["log_sigma"]))
        self.omega_ = self._state.get("omega")
        if self._head_kind == "nearest":
            self.prototype_labels_ = self.classes_[self._state["labels"].astype(int)]
        else:
            self.prototype_labels_ = self.classes_[np.argmax(rp, axis=1)]
        self.prototype_sample_indices_ = np.asarray(indices, dtype=np.intp)
        self.history_ = history
        self.loss_curve_ = list(history["loss"])

    def _net(self, dtype=torch.float64):
        s = self._state
        net = _RBFNet(
            torch.as_tensor(s["components"]),
            None if s.get("omega") is None else torch.as_tensor(s["omega"]),
            torch.as_tensor(s["log_sigma"]),
            None if s.get("reasoning") is None else torch.as_tensor(s["reasoning"]),
            torch.as_tensor(s["labels"]).long(),
            self._head_kind,
            len(self.classes_),
        )
        return net.to(dtype=dtype)

    # ------------------------------------------------------- computations
    def _torch_net(self, X):
        return self._net(torch.float64 if X.dtype == np.float64 else torch.float32)

    def _pairwise(self, X: np.ndarray) -> np.ndarray:
        """Detection probabilities ``d_k(x)``."""
        with torch.no_grad():
            return self._torch_net(X).detections(torch.as_tensor(X)).numpy()

    def _activation(self, D: np.ndarray) -> np.ndarray:
        return D

    def _head(self):
        rp, rn = self.reasoning_positive_, self.reasoning_negative_
        return rp - rn, rn.sum(0)

    def _scores_chunk(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            net = self._torch_net(X)
            return net.class_scores(net.detections(torch.as_tensor(X))).numpy()

    def _proba_chunk(self, X: np.ndarray) -> np.ndarray:
        """``p_c / sum p``; from ``log p_c`` where the head allows (no underflow)."""
        if self._head_kind == "positive_negative":
            P = self._scores_chunk(X)
            total = P.sum(axis=1, keepdims=True)
            empty = total[:, 0] <= 0
            P[empty], total[empty] = 1.0, P.shape[1]  # every score underflowed: uniform
            P /= total
            return P
        net = self._torch_net(X)
        P = np.empty((len(X), len(self.classes_)), dtype=X.dtype)
        with torch.no_grad():
            for s in chunk_slices(len(X), len(self.prototypes_) * len(self.classes_)):
                P[s] = net.log_class_scores(torch.as_tensor(X[s])).numpy()
        P -= P.max(axis=1, keepdims=True)
        np.exp(P, out=P)
        P /= P.sum(axis=1, keepdims=True)
        return P

    def _score_samples_chunk(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return -self._torch_net(X).distances(torch.as_tensor(X)).min(1).values.numpy()

    def _contributions(self, D: np.ndarray) -> np.ndarray:
        parts = self._contribution_parts(D)
        if parts is not None:
            return parts["presence"] + parts["absence"]
        # nearest head: the best-detected component of each class carries its score
        labels = np.searchsorted(self.classes_, self.prototype_labels_)
        n = D.shape[0]
        out = np.zeros(D.shape + (len(self.classes_),), dtype=D.dtype)
        rows = np.arange(n)
        for c in range(len(self.classes_)):
            comps = np.flatnonzero(labels == c)
            best = comps[np.argmax(D[:, comps], axis=1)]
            out[rows, best, c] = D[rows, best]
        return out

    def _contribution_parts(self, D: np.ndarray):
        if self._head_kind == "nearest":
            return None
        rp = self.reasoning_positive_.astype(D.dtype, copy=False)
        rn = self.reasoning_negative_.astype(D.dtype, copy=False)
        return {"presence": D[:, :, None] * rp[None], "absence": (1 - D)[:, :, None] * rn[None]}

    def _explain_bias(self) -> np.ndarray:
        return np.zeros(len(self.classes_))

    # ------------------------------------------------------- robustness
    def certified_radius(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """Certified L2 radius of each prediction (see the class docstring for the bounds).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), default=None
            True labels. Where given, the radius is 0 for samples whose
            prediction is not ``y``.

        Returns
        -------
        radius : ndarray of shape (n_samples,)
            No perturbation ``delta`` with ``||delta||_2 < radius`` changes the
            prediction. Always >= 0 (0 on ties and misclassifications).
        """
        X = self._validate_X_predict(X)
        pred = np.searchsorted(self.classes_, self.predict(X))
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(X):
                raise ValueError(f"y has {len(y)} labels for {len(X)} samples.")
            unknown = np.setdiff1d(np.unique(y), self.classes_)
            if unknown.size:
                raise ValueError(f"y contains labels {unknown.tolist()!r} not in classes_.")
        K = len(self.prototypes_)
        out = np.empty(len(X), dtype=X.dtype)
        net = self._torch_net(X)
        n_own = np.bincount(np.searchsorted(self.classes_, self.prototype_labels_)).max()
        work = K * n_own if self._head_kind == "nearest" else K * len(self.classes_)
        with torch.no_grad():
            for s in chunk_slices(len(X), max(work, X.shape[1])):
                out[s] = net.certified_radius(
                    torch.as_tensor(X[s]), torch.as_tensor(pred[s])
                ).numpy()
        out = np.maximum(out, 0)
        if y is not None:
            out[self.classes_[pred] != y] = 0
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def certified_accuracy(estimator, X: ArrayLike, y: ArrayLike, eps) -> np.ndarray | float:
    """Fraction of samples classified correctly with a certified radius above ``eps``.

    Parameters
    ----------
    estimator : fitted RBFPrototypeClassifier (or any estimator with ``certified_radius``)
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
    eps : float or array-like of floats
        Perturbation budget(s) in L2 norm.

    Returns
    -------
    accuracy : float, or ndarray with one value per ``eps``
    """
    radius = estimator.certified_radius(X, y)
    eps_arr = np.asarray(eps, dtype=float)
    acc = (radius[None, :] > eps_arr.reshape(-1, 1)).mean(axis=1)
    return float(acc[0]) if eps_arr.ndim == 0 else acc


def _sq_dist_min(Z, U):
    """Squared distance of each row of Z to its nearest row of U (chunked)."""
    out = np.empty(len(Z))
    uu = (U * U).sum(1)
    for s in chunk_slices(len(Z), len(U)):
        z = Z[s]
        out[s] = ((z * z).sum(1)[:, None] - 2 * z @ U.T + uu).min(1)
    return out
