"""Argument checks shared by the whole package.

Every public function validates its arguments here, so that a bad value gets
the same kind of message everywhere: the argument's name, what was expected,
and what was received, e.g. ``rate must be in [0, 1]; received rate=1.5``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type.

    A :class:`TypeError`, and also a :class:`ValueError` so that
    ``except ValueError`` catches every bad rate, including non-numbers
    (the same double inheritance as NumPy's ``AxisError``).
    """


def check_rate(rate: object, name: str = "rate", *, allow_one: bool = True) -> float:
    """Return ``rate`` as a float after checking it is a probability.

    Args:
        rate: The value to check (a drop probability unless ``name`` says otherwise).
        name: The argument's name, used in the error message.
        allow_one: Whether ``1.0`` is accepted (some layers cannot work at 1).

    Returns:
        ``float(rate)``.

    Raises:
        ArgumentTypeError: ``rate`` is not a real number (booleans and strings
            included); a subclass of both ``TypeError`` and ``ValueError``.
        ValueError: ``rate`` is NaN or outside ``[0, 1]`` (``[0, 1)`` if not ``allow_one``).
    """
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise ArgumentTypeError(
            f"{name} must be a real number in [0, 1]; received {name}={rate!r}"
        )
    value = float(rate)
    upper = "1]" if allow_one else "1)"
    if math.isnan(value) or value < 0.0 or value > 1.0 or (value == 1.0 and not allow_one):
        raise ValueError(f"{name} must be in [0, {upper}; received {name}={rate!r}")
    return value


def check_positive_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer ``>= minimum``.

    Args:
        value: The value to check (Python or NumPy integers; not ``bool``).
        name: The argument's name, used in the error message.
        minimum: The smallest value accepted.

    Returns:
        ``int(value)``.

    Raises:
        TypeError: ``value`` is not an integer (``50.0`` and ``True`` included).
        ValueError: ``value < minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; received {name}={value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; received {name}={value!r}")
    return int(value)


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` after checking it is one of ``choices``.

    Args:
        value: The value to check.
        name: The argument's name, used in the error message.
        choices: The accepted values.

    Returns:
        ``value``, unchanged.

    Raises:
        ValueError: ``value`` is not in ``choices`` (the message lists them).
    """
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; received {name}={value!r}")
    return value  # type: ignore[return-value]


def as_rng(rng: np.random.Generator | int | None, name: str = "rng") -> np.random.Generator:
    """Normalise a seed or generator into a :class:`numpy.random.Generator`.

    ``None`` gives fresh entropy, an ``int`` a seeded generator, and a
    ``Generator`` is returned as it is (so state advances across calls).

    Args:
        rng: A generator, an integer seed (Python or NumPy) or ``None``.
        name: The argument's name, used in the error message.

    Returns:
        A :class:`numpy.random.Generator`.

    Raises:
        TypeError: ``rng`` is anything else (``bool``, a float, a legacy
            ``RandomState``...).
        ValueError: ``rng`` is a negative integer.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng < 0:
        # NumPy's own message ("expected non-negative integer") names neither
        raise ValueError(
            f"{name} must be a numpy.random.Generator, a non-negative int seed or None; "
            f"received {name}={rng!r}"
        )
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{name} must be a numpy.random.Generator, an int seed or None; "
        f"received {name}={rng!r}"
    )


def as_float_array(x: object, name: str = "x") -> np.ndarray:
    """Return ``x`` as a floating NumPy array without copying float input.

    Floating arrays keep their dtype (float32 stays float32). Integer and
    boolean input is converted to float64, never truncated. Anything else
    (strings, objects, complex numbers) is rejected.

    Args:
        x: An array or anything :func:`numpy.asarray` accepts, of any shape.
        name: The argument's name, used in the error message.

    Returns:
        ``x`` itself (as an array) if floating, else a float64 copy; same shape.

    Raises:
        TypeError: ``x`` does not hold real numbers.
    """
    arr = np.asarray(x)
    if np.issubdtype(arr.dtype, np.floating):
        return arr
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        return arr.astype(np.float64)
    raise TypeError(
        f"{name} must be an array of real numbers; received {name} with dtype {arr.dtype}"
    )
