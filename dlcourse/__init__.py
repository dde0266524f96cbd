"""dlcourse: the companion package of an open course on dropout.

Importing :mod:`dlcourse` is cheap: it imports neither TensorFlow nor PyTorch.
The framework helpers live in :mod:`dlcourse.keras` and :mod:`dlcourse.torch`
and import their framework only when you import them.

Convention used everywhere: ``rate`` is the **drop** probability; where a
formula needs the keep probability it is called ``keep = 1.0 - rate``.
"""

from dlcourse._version import __version__

__all__ = ["__version__"]
