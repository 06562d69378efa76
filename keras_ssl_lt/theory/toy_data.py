"""The toy distribution of the paper's analysis, sampled exactly as stated (numpy, seeded).

`e1`, `e2` are orthogonal unit vectors of R^d (here the first two standard basis vectors; both models are
rotation-equivariant, so the choice is immaterial), `q ~ Bernoulli(1/2)`, `xi ~ N(0, I_d)`:

- class 0 (frequent): `x =  e1 - q * tau * e2 + rho * xi`
- class 1 (frequent): `x = -e1 - q * tau * e2 + rho * xi`
- class 2 (rare):     `x =  e2 + rho * xi`, a share `rare_share` of the examples (the theorem: -> 0).

Only `e1` separates the frequent classes; only `e2` identifies the rare class; the frequent data carry
`e2` too (through `q`), but as a label-irrelevant direction.
"""

import numpy as np

from keras_ssl_lt._checks import check_int

__all__ = ["FREQUENT", "RARE", "sample_toy", "toy_basis", "toy_second_moment"]

FREQUENT = (0, 1)
RARE = 2


def _check(name, value, low, high=None, low_open=False):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number; got {value!r}")
    value = float(value)
    bad = value <= low if low_open else value < low
    if bad or (high is not None and value > high) or not np.isfinite(value):
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}]"
        raise ValueError(f"`{name}` must be in {bounds}; got {value!r}")
    return value


def toy_basis(d):
    """The two directions `(e1, e2)` of R^d used by the toy model (float64 unit vectors).

    >>> e1, e2 = toy_basis(3)
    >>> e1.tolist(), e2.tolist()
    ([1.0, 0.0, 0.0], [0.0, 1.0, 0.0])
    """
    d = check_int(d, "d", low=2)
    eye = np.eye(d)
    return eye[0], eye[1]


def class_counts(n, rare_share=0.0, balanced=False):
    """Examples per class `[class 0, class 1, rare]`: exact counts, the rare one `round(n * rare_share)`.

    >>> class_counts(1000, 0.01), class_counts(9, balanced=True)
    ([495, 495, 10], [3, 3, 3])
    """
    n = check_int(n, "n", low=1)
    if balanced:
        base = [n // 3] * 3
        for k in range(n - sum(base)):
            base[k] += 1
        return base
    share = _check("rare_share", rare_share, 0.0, 1.0)
    rare = round(n * share)
    frequent = n - rare
    return [frequent - frequent // 2, frequent // 2, rare]


def sample_toy(n, d=16, tau=1.0, rho=0.3, rare_share=0.0, seed=0, balanced=False):
    """`n` examples of the toy distribution, shuffled: `(x float32 (n, d), y int32 (n,), q int32 (n,))`.

    Args:
        n: number of examples.
        d: dimension (>= 2).
        tau: size of the label-irrelevant `e2` component of the frequent classes (>= 0).
        rho: data-noise scale (>= 0).
        rare_share: share of the rare class (exact count `round(n * rare_share)`), in [0, 1].
        seed: integer seed.
        balanced: one third per class instead (for probe training and testing sets).

    Example:

    >>> x, y, q = sample_toy(6, d=3, tau=2.0, rho=0.0, balanced=True, seed=0)
    >>> sorted({tuple(v) for v in x[y == 2].tolist()})
    [(0.0, 1.0, 0.0)]
    >>> sorted({tuple(v) for v in x[y == 0].tolist()}) in ([(1.0, -2.0, 0.0), (1.0, 0.0, 0.0)],
    ...                                                     [(1.0, 0.0, 0.0)], [(1.0, -2.0, 0.0)])
    True
    """
    d = check_int(d, "d", low=2)
    tau = _check("tau", tau, 0.0)
    rho = _check("rho", rho, 0.0)
    seed = check_int(seed, "seed", low=0)
    counts = class_counts(n, rare_share, balanced)
    rng = np.random.default_rng([seed, 21])
    y = np.repeat(np.arange(3), counts)
    q = (rng.random(y.size) < 0.5).astype(np.int32)
    q[y == RARE] = 0
    e1, e2 = toy_basis(d)
    sign = np.where(y == 0, 1.0, -1.0)[:, None]
    mean = np.where((y == RARE)[:, None], e2[None], sign * e1[None] - (q * tau)[:, None] * e2[None])
    x = mean + rho * rng.standard_normal((y.size, d))
    order = rng.permutation(y.size)
    return x[order].astype(np.float32), y[order].astype(np.int32), q[order]


def toy_second_moment(d, tau, rho, rare_share):
    """The population second moment `E[x x^T]` in closed form (float64 `(d, d)`).

    `(1 - p) e1 e1^T + ((1 - p) tau^2 / 2 + p) e2 e2^T + rho^2 I` for a rare share `p` (the frequent classes
    are equally likely, so the `e1`-`e2` cross terms cancel). It is also the second moment of positive pairs,
    `E[(x + xi)(x + xi')^T]`, the only statistic the SSL objective sees.

    >>> toy_second_moment(3, tau=2.0, rho=0.0, rare_share=0.0).diagonal().tolist()
    [1.0, 2.0, 0.0]
    """
    d = check_int(d, "d", low=2)
    tau, rho = _check("tau", tau, 0.0), _check("rho", rho, 0.0)
    p = _check("rare_share", rare_share, 0.0, 1.0)
    e1, e2 = toy_basis(d)
    return (1 - p) * np.outer(e1, e1) + ((1 - p) * tau**2 / 2 + p) * np.outer(e2, e2) + rho**2 * np.eye(d)
