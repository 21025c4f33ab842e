"""TorchEncoder: any torch module as a stateless scikit-learn transformer."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils._param_validation import StrOptions

from ._base import BaseEncoder, _check_width, held
from ._cache import (
    _value_bytes,
    callable_key,
    module_attributes,
    module_code,
    numerics_key,
    tensor_digest,
)

if TYPE_CHECKING:  # pragma: no cover - torch is imported on use
    import torch

__all__ = ["TorchEncoder"]


def _writable(item) -> np.ndarray:
    """``item`` as an array torch takes without a warning: read-only arrays (a
    frame's values, a memory map) are copied (torch warned that it does not
    support non-writable tensors, once per process, on the user's screen), and
    so are arrays torch refuses: negative strides (a flipped view) and a
    non-native byte order."""
    a = np.asarray(item)
    if not a.dtype.isnative:  # (torch refuses a non-native byte order: a '>f4' image)
        return a.astype(a.dtype.newbyteorder("="), order="C")
    if not a.flags.writeable or any(step < 0 or step % a.itemsize for step in a.strides):
        # (torch refuses negative strides: an image flipped by a view, img[..., ::-1],
        # and strides not a multiple of the item size: a field of a packed record)
        return np.array(a, order="C")
    return a


def _tensor(item):
    """One (preprocessed) input as a tensor: a tensor as it is (numpy has no bfloat16,
    and reads no GPU tensor), anything else through :func:`_writable`."""
    import torch

    if isinstance(item, torch.Tensor):
        return item.detach()
    return torch.as_tensor(_writable(item))


def _stack(batch: list):
    """The inputs of a batch stacked, or a ``ValueError`` naming the input torch
    could not take (torch's TypeError on an object array, or its RuntimeError on
    inputs of different shapes, came out raw)."""
    import torch

    tensors = []
    for item in batch:
        try:
            tensors.append(_tensor(item))
        except (TypeError, ValueError, RuntimeError) as error:
            raise ValueError(
                f"TorchEncoder could not make a tensor of an input ({type(item).__name__}: "
                f"{error}); inputs (after preprocess) must be numeric arrays or tensors."
            ) from error
        if tensors[-1].shape != tensors[0].shape:
            raise ValueError(
                "TorchEncoder stacks the inputs of a batch, which must have one shape; got "
                f"inputs of shapes {tuple(tensors[0].shape)} and {tuple(tensors[-1].shape)}. "
                "Give them one shape in preprocess (or use batch_size=1 with a module that "
                "takes any shape and gives features of one width)."
            )
    return torch.stack(tensors)


@contextlib.contextmanager
def _eval_mode(model):
    """The block with ``model`` and every submodule in eval mode, each module's own
    mode back when the last block running on it, in any thread, ends (:func:`held`,
    per submodule: a module may be encoded alone and inside a larger one)."""
    with contextlib.ExitStack() as stack:
        for m in model.modules():
            stack.enter_context(
                held(
                    ("training", id(m)),
                    lambda m=m: m.training,
                    lambda m=m: setattr(m, "training", False),
                    lambda mode, m=m: setattr(m, "training", mode),
                )
            )
        yield


class TorchEncoder(BaseEncoder):
    """Frozen features from any ``torch.nn.Module``, as a scikit-learn transformer.

    Each batch of raw inputs goes through ``preprocess`` (one input at a
    time), is stacked, and runs through ``module`` in evaluation mode without
    gradients; outputs with more than two dimensions are flattened per
    input. Nothing is learned: ``fit`` only checks the input.

    Parameters
    ----------
    module : torch.nn.Module or callable returning one
        The encoder. A module is used as given (and pickled with the
        encoder); a callable (e.g. a function that loads weights) is called
        on first use, and again after unpickling, so the module itself is
        never pickled.
    preprocess : callable, default=None
        Maps one raw input (an image, a signal, ...) to an array or tensor;
        None: inputs are arrays already (``np.asarray``).
    batch_size : int, default=64
        Inputs per forward pass.
    device : {"cpu", "cuda", "auto"} or str, default="cpu"
        Where the module runs ("auto": CUDA when available).
    normalize : bool, default=False
        Scale every output row to unit L2 norm.
    memory : None, str, path or joblib.Memory, default=None
        Cache folder of the encodings, one entry per distinct input (hashed
        by its bytes), as for :class:`SentenceEncoder`. The cache key holds
        a hash of the module (each layer's class, ``forward`` code and plain
        attributes, its parameters and buffers, the code of its classes'
        methods and the globals that code reads; of a factory: its code and
        the globals it reads), of ``preprocess`` and of ``cache_key``, and the
        device (a GPU by its model) and the precision it runs with (torch's
        default dtype, float32 matmul precision, TF32, autocast).
    cache_key : str, default=""
        An extra name in the cache key (e.g. for what a factory loads).
    verbose : int, default=0
        Print progress while encoding.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skproto.encoders import TorchEncoder
    >>> torch.manual_seed(0) and None
    >>> enc = TorchEncoder(torch.nn.Linear(4, 2))
    >>> enc.fit_transform(np.ones((3, 4))).shape
    (3, 2)
    """

    _parameter_constraints: dict = {
        **BaseEncoder._parameter_constraints,
        "module": [callable],
        "preprocess": [None, callable],
        "device": [StrOptions({"cpu", "cuda", "auto"}), str],
        "normalize": ["boolean"],
        "cache_key": [str],
    }

    def __init__(
        self,
        module: torch.nn.Module | Callable[[], torch.nn.Module],
        *,
        preprocess: Callable | None = None,
        batch_size: int = 64,
        device: str = "cpu",
        normalize: bool = False,
        memory: str | os.PathLike | Any | None = None,
        cache_key: str = "",
        verbose: int = 0,
    ) -> None:
        self.module = module
        self.preprocess = preprocess
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.memory = memory
        self.cache_key = cache_key
        self.verbose = verbose

    def _device(self):
        from .._torch.training import resolve_device

        return resolve_device(self.device)

    def _load(self):
        import torch

        module = self.module
        if not isinstance(module, torch.nn.Module):
            module = module()
            if not isinstance(module, torch.nn.Module):
                raise ValueError(
                    "TorchEncoder's module must be a torch.nn.Module or a callable returning "
                    f"one; the callable returned {type(module).__name__}."
                )
        return module.to(self._device())  # (put in eval mode while encoding only)

    def _check_inputs(self, X) -> list:
        if isinstance(X, str) or not hasattr(X, "__len__"):
            raise ValueError(f"TorchEncoder expects a sequence of inputs, got {type(X).__name__}.")
        if hasattr(X, "iloc") and getattr(X, "ndim", 1) == 2:  # a DataFrame: its rows
            return list(X.to_numpy())  # (list() gave its column labels)
        items = list(X) if not isinstance(X, list) else X
        if self.preprocess is None and any(isinstance(item, (str, bytes)) for item in items):
            # (a raw TypeError from inside torch before)
            raise ValueError(
                "TorchEncoder without preprocess encodes arrays; got a string input. "
                "Pass preprocess= to map each input (e.g. a file path) to an array."
            )
        return items

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True  # (the rows of a 2-D array are its inputs)
        tags.transformer_tags.preserves_dtype = ["float32"]  # (codes are float32)
        return tags

    def _encode_block(self, model, items: list) -> np.ndarray:
        import torch

        # (its buffers too: a module without parameters, a fixed projection kept as a
        # float64 buffer, was fed float32 inputs and failed)
        tensors = [*model.parameters(), *model.buffers()]
        device = tensors[0].device if tensors else self._device()
        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
        out = []
        # (the user's module is left in the mode it was in)
        with torch.no_grad(), _eval_mode(model):
            for s in range(0, len(items), self.batch_size):
                batch = items[s : s + self.batch_size]
                if self.preprocess is not None:
                    batch = [self.preprocess(item) for item in batch]
                x = _stack(batch)
                if x.is_complex():  # (its imaginary part was dropped, or torch raised)
                    raise ValueError(
                        f"Complex data not supported: TorchEncoder got inputs of {x.dtype}."
                    )
                if x.is_floating_point() or x.dtype in (torch.uint8, torch.bool):
                    x = x.to(dtype)  # (images of uint8 too; token ids stay integers)
                z = model(x.to(device))
                if not isinstance(z, torch.Tensor):  # (a tuple failed: no attribute 'reshape')
                    raise ValueError(
                        "TorchEncoder's module must return a tensor of features; it returned "
                        f"a {type(z).__name__}. Wrap it to pick the features (an LSTM's "
                        "output[0], a model output's .last_hidden_state)."
                    )
                if z.is_complex():  # (.float() dropped the imaginary part)
                    raise ValueError(
                        f"TorchEncoder's module must return real features; it returned {z.dtype}."
                    )
                z = z.reshape(len(batch), -1).float()
                if out:
                    _check_width(type(self).__name__, out[0].shape[1], z.shape[1])
                if self.normalize:
                    z = torch.nn.functional.normalize(z, dim=1)
                out.append(z.cpu().numpy())
        return np.concatenate(out)

    def _probe_inputs(self) -> list:
        probe = self.__dict__.get("_fit_probe")
        if probe:  # the first input fit saw: the module's width needs a real input
            return probe
        raise ValueError(
            "TorchEncoder cannot know its output width before it has seen an input: "
            "call fit, transform or fit_transform first."
        )

    def _settings(self) -> str:
        import torch

        module = self.module
        if isinstance(module, torch.nn.Module):  # its layers and weights, hashed once
            # per state: a fingerprint says when (hashing 200 MB of weights on every
            # transform made a cache hit cost 0.8 s). It reads every tensor's values
            # cheaply (tensor_digest) and every layer's plain attributes (arrays, a
            # forward set on the layer): storage and in-place version counters missed
            # weights changed through .data, and arrays changed in place, so that
            # old encodings came back from the cache
            tensors = [*module.named_parameters(), *module.named_buffers()]
            lazy = [k for k, v in tensors if torch.nn.parameter.is_lazy(v)]
            if lazy:  # (no values to key: torch's "uninitialized parameter" error before)
                raise ValueError(
                    f"TorchEncoder cannot key the cache (memory=) of a lazy module before its "
                    f"parameters exist ({lazy[0]} is uninitialized): run the module once on a "
                    "batch first, or pass memory=None."
                )
            fingerprint = (
                id(module),
                tuple((k, v.data_ptr(), tensor_digest(v)) for k, v in tensors),
                tuple(
                    (name, type(layer), _value_bytes(module_attributes(layer)))
                    for name, layer in module.named_modules()
                ),
                # (the globals the layers' code reads: a module-level SCALE changed
                # between two transforms of one encoder brought the old encodings back)
                module_code(module),
            )
            known = self.__dict__.get("_module_key")
            if known is None or known[0] != fingerprint:
                known = (fingerprint, callable_key(module))
                self.__dict__["_module_key"] = known
            name = known[1]
        else:  # a factory
            name = callable_key(module)
        # (the device and precision settings: the key held neither, so a GPU's
        # encodings were the CPU's entries, and float32 ones came back under autocast)
        return (
            f"TorchEncoder|{name}|{self.cache_key}|normalize={bool(self.normalize)}|"
            f"preprocess={callable_key(self.preprocess)}|{numerics_key(self._device())}"
        )
