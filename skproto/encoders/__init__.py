"""Frozen encoders as pipeline steps: raw inputs in, feature rows out.

- :class:`SentenceEncoder`: a sentence-transformers model (texts -> sentence
  embeddings), offline (a local folder, a packaged model or the local cache);
  needs ``skproto[text]``.
- :class:`TorchEncoder`: any ``torch.nn.Module`` with a ``preprocess`` callable
  for raw inputs (images, signals).

Both are stateless scikit-learn transformers: ``__init__`` stores parameters,
the model loads on first use and is not pickled, and an optional per-input
disk cache (``memory=``) encodes each input once across clones and folds.
Importing this module imports neither torch nor sentence-transformers.
"""

from .._tokens import pack_tokens, unpack_tokens
from ._base import BaseEncoder
from ._sentence import SentenceEncoder, load_sentence_model
from ._torch import TorchEncoder

__all__ = [
    "BaseEncoder",
    "SentenceEncoder",
    "TorchEncoder",
    "load_sentence_model",
    "pack_tokens",
    "unpack_tokens",
]
