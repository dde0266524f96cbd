"""Dropout and a small neural-network toolkit, from scratch in NumPy."""

from dlcourse.scratch.dropout import Dropout, dropout_backward, dropout_forward

__all__ = ["Dropout", "dropout_backward", "dropout_forward"]
