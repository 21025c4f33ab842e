"""Torch plumbing of the learned estimators: the training loop and the estimator template.

Imported only by the torch-backed estimators, so ``import skproto`` does not
import torch.
"""
