"""Shared argument checks (private): each validates one argument and returns it normalised.

Every check raises a `ValueError` that names the argument and the values it accepts, so a user's
typo is reported where it was made (in a layer's or function's constructor), not as a shape error
deep inside a compiled step. Booleans are never accepted as numbers.

Example:

>>> check_probability(0.5, "p")
0.5
>>> check_range([0.2, 1], "scale", positive=True, high=1.0)
(0.2, 1.0)
"""

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_labels",
    "check_non_negative",
    "check_non_negative_int",
    "check_number",
    "check_positive_int",
    "check_probability",
    "check_range",
    "check_seed",
    "check_triple",
    "is_int",
    "is_number",
]


def is_number(value):
    """True for a Python or numpy int or float (bool excluded); NaN counts as a number here.

    >>> is_number(3), is_number(2.5), is_number(True), is_number("1")
    (True, True, False, False)
    """
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def is_int(value):
    """True for a Python or numpy integer (bool excluded).

    >>> is_int(3), is_int(3.0), is_int(False)
    (True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _finite(value):
    return is_number(value) and bool(np.isfinite(float(value)))


def check_bool(value, name):
    """`value` must be True or False (not 0/1 or a string).

    >>> check_bool(True, "flip")
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False; got {value!r}")
    return bool(value)


def check_choice(value, name, choices):
    """`value` must be one of `choices` (compared with ==).

    >>> check_choice("pad", "crop", ("resized", "pad"))
    'pad'
    """
    if not isinstance(value, (str, int, float, type(None))) or value not in tuple(choices):
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}")
    return value


def _bounds(low, high, low_open=False, high_open=False):
    """The bounds of an error message: " in [0, 1)", " >= 1", " < 5" or ""."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {low}"
    if high is not None:
        return f" {'<' if high_open else '<='} {high}"
    return ""


def check_number(value, name, low=None, high=None, low_open=False, high_open=False):
    """A finite number inside the optional bounds (`low_open`/`high_open` exclude the bound); returns a float.

    >>> check_number(0.875, "eval_crop_fraction", low=0, high=1, low_open=True)
    0.875
    """
    ok = _finite(value)
    if ok and low is not None:
        ok = float(value) > low if low_open else float(value) >= low
    if ok and high is not None:
        ok = float(value) < high if high_open else float(value) <= high
    if not ok:
        raise ValueError(f"`{name}` must be a finite number{_bounds(low, high, low_open, high_open)}; got {value!r}")
    return float(value)


def check_non_negative(value, name):
    """A finite number >= 0; returns a float.

    >>> check_non_negative(0.4, "brightness")
    0.4
    """
    return check_number(value, name, low=0.0)


def check_probability(value, name):
    """A probability in [0, 1]; returns a float.

    >>> check_probability(1, "p")
    1.0
    """
    if not _finite(value) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"`{name}` must be a probability in [0, 1]; got {value!r}")
    return float(value)


def check_positive_int(value, name):
    """An int >= 1 (a size, a count); returns an int.

    >>> check_positive_int(32, "size")
    32
    """
    if not is_int(value) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}")
    return int(value)


def check_non_negative_int(value, name):
    """An int >= 0; returns an int.

    >>> check_non_negative_int(0, "padding")
    0
    """
    if not is_int(value) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative int; got {value!r}")
    return int(value)


def check_range(value, name, low=None, high=None, positive=False):
    """A pair `(lo, hi)` of finite numbers with lo <= hi inside the optional bounds; returns a float tuple.

    `positive` requires lo > 0; `low`/`high` bound lo and hi inclusively.

    >>> check_range((0.1, 2), "sigma", positive=True)
    (0.1, 2.0)
    """
    ok = (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(_finite(v) for v in value)
        and float(value[0]) <= float(value[1])
    )
    if ok:
        lo, hi = float(value[0]), float(value[1])
        ok = (low is None or lo >= low) and (high is None or hi <= high) and (not positive or lo > 0)
    if not ok:
        bounds = []
        if positive:
            bounds.append("values > 0")
        if low is not None:
            bounds.append(f"values >= {low}")
        if high is not None:
            bounds.append(f"values <= {high}")
        extra = f" with {', '.join(bounds)}" if bounds else ""
        raise ValueError(
            f"`{name}` must be a pair (low, high) of finite numbers with low <= high{extra}; got {value!r}"
        )
    return (float(value[0]), float(value[1]))


def check_triple(value, name, positive=False):
    """Three finite numbers (one per RGB channel), all > 0 with `positive`; returns a float tuple.

    >>> check_triple([0.5, 0.5, 0.5], "mean")
    (0.5, 0.5, 0.5)
    """
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 3
        or not all(_finite(v) for v in value)
        or (positive and any(float(v) <= 0 for v in value))
    ):
        req = "3 positive finite numbers" if positive else "3 finite numbers"
        raise ValueError(f"`{name}` must be {req} (one per RGB channel); got {value!r}")
    return tuple(float(v) for v in value)


def check_seed(seed, name="seed"):
    """None or an int; returns None or an int.

    >>> check_seed(None), check_seed(7)
    (None, 7)
    """
    if seed is not None and not is_int(seed):
        raise ValueError(f"`{name}` must be None or an int; got {seed!r}")
    return None if seed is None else int(seed)


def check_int(value, name, low=None, high=None):
    """An int inside the optional inclusive bounds; returns an int.

    >>> check_int(3, "num_classes", low=1)
    3
    >>> check_int(0, "num_classes", low=1)
    Traceback (most recent call last):
    ...
    ValueError: `num_classes` must be an int >= 1; got 0
    """
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"`{name}` must be an int{_bounds(low, high)}; got {value!r}")
    return int(value)


def check_fraction(value, name):
    """A number in (0, 1] (a ratio, a share of a set); returns a float.

    >>> check_fraction(0.01, "ratio")
    0.01
    """
    return check_number(value, name, low=0.0, high=1.0, low_open=True)


def check_labels(labels, name="labels", num_classes=None, integral_floats=True, allow_empty=False):
    """1-D non-negative integer class ids (below `num_classes` when given) as an int64 array.

    Floats are accepted when every value is whole (nothing is rounded) unless `integral_floats=False`;
    booleans, strings, NaN and fractional values are refused, and so is an empty array unless `allow_empty`.

    >>> check_labels([0, 2.0, 1], num_classes=3).tolist()
    [0, 2, 1]
    >>> check_labels([0, 1.7])
    Traceback (most recent call last):
    ...
    ValueError: `labels` must be integer class ids (an integer dtype, or floats with whole values); got 1.7
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be a 1-D array of class ids; got shape {y.shape}")
    if not y.size and not allow_empty:
        raise ValueError(f"`{name}` must be a non-empty 1-D array of class ids; got an empty array")
    kinds = "an integer dtype, or floats with whole values" if integral_floats else "an integer dtype"
    if y.dtype.kind == "f" and integral_floats:
        bad = ~np.isfinite(y) | (y != np.round(y))
        if np.any(bad):
            raise ValueError(f"`{name}` must be integer class ids ({kinds}); got {y[np.argmax(bad)].item()!r}")
        if y.size and np.max(np.abs(y)) >= 2**53:
            raise ValueError(f"`{name}` holds a class id too large to be exact: {np.max(np.abs(y)).item()!r}")
    elif y.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be integer class ids ({kinds}); got dtype {y.dtype}")
    y = y.astype("int64")
    if y.size and y.min() < 0:
        raise ValueError(f"`{name}` must be non-negative class ids; got {int(y.min())}")
    if num_classes is not None:
        num_classes = check_int(num_classes, "num_classes", low=1)
        if y.size and y.max() >= num_classes:
            raise ValueError(
                f"`{name}` must lie in [0, num_classes) = [0, {num_classes}); got values in "
                f"[{int(y.min())}, {int(y.max())}]"
            )
    return y
