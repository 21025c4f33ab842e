"""Weighted per-class sufficient statistics: exactly updatable and mergeable."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .._chunking import chunk_slices
from ..geometry import normalize_rows

__all__ = ["ClassStats"]


def _shift(t3, q4, M2s, tr, n, s):
    """Third/fourth norm moments about ``mean + s`` instead of ``mean``.

    ``M2s`` is the scatter times ``s`` and ``tr`` its trace; works row-wise on
    stacks of classes (leading axis) or on one class.
    """
    ss = np.sum(s * s, axis=-1)
    t3_new = t3 - np.expand_dims(tr, -1) * s - 2.0 * M2s - np.expand_dims(n * ss, -1) * s
    q4_new = (
        q4
        + 4.0 * np.sum(s * M2s, axis=-1)
        + n * ss * ss
        - 4.0 * np.sum(t3 * s, axis=-1)
        + 2.0 * tr * ss
    )
    return t3_new, q4_new


@dataclass
class ClassStats:
    """Weighted per-class sufficient statistics, exactly updatable and mergeable.

    All arrays are float64 and aligned with one ordering of the classes.
    Central moments are kept about each class mean. New rows are folded in
    with the batch form of Welford's update and two sets are combined with the
    pairwise update of Chan, Golub & LeVeque (1979); the third and fourth norm
    moments the Ledoit-Wolf intensity needs are shifted as in Pebay (2008).

    count : (C,)        sum of sample weights
    mean : (C, p)       weighted mean
    scatter : None, (p, p) pooled over classes, or (C, p, p)
              sum_i w_i (x_i - m_c)(x_i - m_c)^T
    t3 : None or (C, p) sum_i w_i ||x_i - m_c||^2 (x_i - m_c)
    q4 : None or (C,)   sum_i w_i ||x_i - m_c||^4
    """

    count: np.ndarray
    mean: np.ndarray
    scatter: np.ndarray | None = None
    t3: np.ndarray | None = None
    q4: np.ndarray | None = None

    @classmethod
    def empty(cls, n_classes: int, n_features: int, *, scatter, fourth, **_) -> ClassStats:
        z = np.zeros
        return cls(
            count=z(n_classes),
            mean=z((n_classes, n_features)),
            scatter={
                None: None,
                "pooled": z((n_features, n_features)),
                "per_class": z((n_classes, n_features, n_features)),
            }[scatter],
            t3=z((n_classes, n_features)) if fourth else None,
            q4=z(n_classes) if fourth else None,
        )

    def update(
        self,
        X: np.ndarray,
        codes: np.ndarray,
        w: np.ndarray,
        *,
        normalize: bool,
        rows: np.ndarray | None = None,
    ) -> None:
        """Fold the rows ``X`` (class ``codes``, weights ``w``) in, in place.

        With ``normalize`` the rows are L2-normalised first (cosine metric).
        ``rows`` (indices into ``X``, ``codes`` and ``w``) folds in only those
        rows, without copying ``X``. Work is proportional to the rows, plus
        ``p**2`` per class present in the rows when per-class scatter
        matrices are kept.
        """
        if self.scatter is not None and self.scatter.ndim == 2:
            self._update_pooled(X, codes, w, normalize, rows)
            return
        if rows is not None:
            X, codes, w = X[rows], codes[rows], w[rows]
        for s in chunk_slices(X.shape[0], 4 * X.shape[1]):
            Xs = np.asarray(X[s], dtype=np.float64)
            self._update_chunk(normalize_rows(Xs) if normalize else Xs, codes[s], w[s])

    def _update_pooled(self, X, codes, w, normalize: bool, rows) -> None:
        """Pooled scatter: the rows' class means first, then their residual scatter, merged.

        Two passes over the rows in chunks: the residuals are taken about the
        exact class means of all the rows (the stable two-pass form), their
        scatter is one symmetric product per chunk, and the statistics join
        the running ones by a single pairwise merge. The chunks go through two
        reused float64 buffers: no allocation per chunk (under dask's
        ``MALLOC_TRIM_THRESHOLD_`` every fresh one would be mapped and zeroed).
        """
        n_classes, p = self.mean.shape
        if rows is not None:
            codes, w = codes[rows], w[rows]
        count = np.bincount(codes, weights=w, minlength=n_classes).astype(np.float64)
        if not count.sum() > 0:
            return
        slices = list(chunk_slices(len(codes), 4 * p))
        size = slices[0].stop - slices[0].start
        buf, other = np.empty((size, p)), np.empty((size, p))
        gather = None if rows is None or X.dtype == np.float64 else np.empty((size, p), X.dtype)

        def load(s):  # the chunk's rows, float64, in ``buf``
            out = buf[: s.stop - s.start]
            if rows is None:
                np.copyto(out, X[s])
            elif gather is None:
                np.take(X, rows[s], axis=0, out=out)
            else:
                g = gather[: s.stop - s.start]
                np.take(X, rows[s], axis=0, out=g)
                np.copyto(out, g)
            if normalize:
                out[:] = normalize_rows(out)
            return out

        sums = np.zeros((n_classes, p))
        for s in slices:
            G = sparse.csr_matrix(
                (w[s], (codes[s], np.arange(s.stop - s.start))),
                shape=(n_classes, s.stop - s.start),
            )
            sums += G @ load(s)
        mean = sums / np.where(count > 0, count, 1.0)[:, None]
        scatter = np.zeros((p, p))
        unit = bool(np.all(w == 1.0))
        for s in slices:
            R = load(s)
            R -= np.take(mean, codes[s], axis=0, out=other[: len(R)])
            if not unit:
                R *= np.sqrt(w[s])[:, None]
            scatter += R.T @ R  # a symmetric rank-k update (syrk)
        merged = self.merge(ClassStats(count=count, mean=mean, scatter=scatter))
        self.count[:], self.mean[:], self.scatter[:] = merged.count, merged.mean, merged.scatter

    def _update_chunk(self, X, codes, w):
        keep = w > 0
        X, codes, w = X[keep], codes[keep], w[keep]
        if not len(w):
            return
        present, local = np.unique(codes, return_inverse=True)
        n_b = np.bincount(local, weights=w)
        G = sparse.csr_matrix((w, (local, np.arange(len(w)))), shape=(len(present), len(w)))
        mean_b = (G @ X) / n_b[:, None]
        n_a = self.count[present]
        n = n_a + n_b
        fa, fb = n_a / n, n_b / n
        d = mean_b - self.mean[present]
        self.mean[present] += d * fb[:, None]
        self.count[present] = n
        if self.scatter is None:
            return
        R = X - mean_b[local]  # residuals about the batch's class means
        Rw = R * w[:, None]
        coef = n_a * fb  # n_a n_b / n
        if self.scatter.ndim == 2:
            self.scatter += Rw.T @ R + (d * coef[:, None]).T @ d
            return
        order = np.argsort(local, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(local))])
        for j, c in enumerate(present):
            rows = order[bounds[j] : bounds[j + 1]]
            Rc, Rwc = R[rows], Rw[rows]
            if self.t3 is not None:
                s_a, s_b = d[j] * fb[j], -d[j] * fa[j]
                S_a = self.scatter[c]
                t_a, q_a = _shift(self.t3[c], self.q4[c], S_a @ s_a, np.trace(S_a), n_a[j], s_a)
                r2 = np.einsum("ij,ij->i", Rc, Rc)
                t_b, q_b = _shift(
                    r2 @ Rwc, (w[rows] * r2) @ r2, Rwc.T @ (Rc @ s_b), w[rows] @ r2, n_b[j], s_b
                )
                self.t3[c], self.q4[c] = t_a + t_b, q_a + q_b
            # residual rows plus the mean-shift row, in one rank-(n+1) product
            self.scatter[c] += np.vstack([Rwc, coef[j] * d[j]]).T @ np.vstack([Rc, d[j]])

    def merge(self, other: ClassStats) -> ClassStats:
        """Statistics of the union of two samples (same class order), as a new object."""
        n = self.count + other.count
        safe = np.where(n > 0, n, 1.0)
        fa, fb = self.count / safe, other.count / safe
        d = other.mean - self.mean
        out = ClassStats(count=n, mean=self.mean + d * fb[:, None])
        if self.scatter is None:
            return out
        coef = self.count * fb  # n_a n_b / n
        if self.scatter.ndim == 2:
            out.scatter = self.scatter + other.scatter + (d * coef[:, None]).T @ d
            return out
        out.scatter = self.scatter + other.scatter + np.einsum("c,ci,cj->cij", coef, d, d)
        if self.t3 is not None:
            parts = [
                _shift(
                    st.t3,
                    st.q4,
                    np.einsum("cij,cj->ci", st.scatter, s),
                    np.einsum("cii->c", st.scatter),
                    st.count,
                    s,
                )
                for st, s in [(self, d * fb[:, None]), (other, -d * fa[:, None])]
            ]
            out.t3 = parts[0][0] + parts[1][0]
            out.q4 = parts[0][1] + parts[1][1]
        return out

    def reindex(self, positions: np.ndarray, n_classes: int) -> ClassStats:
        """Place class ``k`` of these statistics at row ``positions[k]`` of a larger set."""

        def grow(a):
            if a is None:
                return None
            out = np.zeros((n_classes,) + a.shape[1:])
            out[positions] = a
            return out

        pooled = self.scatter is not None and self.scatter.ndim == 2
        return ClassStats(
            count=grow(self.count),
            mean=grow(self.mean),
            scatter=self.scatter.copy() if pooled else grow(self.scatter),
            t3=grow(self.t3),
            q4=grow(self.q4),
        )
