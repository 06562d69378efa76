"""One setting of the toy model end to end: sample, train both learners with `fit`, measure, compare."""

import numpy as np

from keras_ssl_lt.theory.closed_forms import ssl_closed_form, ssl_closed_form_alignment
from keras_ssl_lt.theory.measures import alignment, linear_probe_accuracy
from keras_ssl_lt.theory.toy_data import RARE, sample_toy, toy_basis
from keras_ssl_lt.theory.toy_models import fit_ssl, fit_supervised

__all__ = ["DEFAULTS", "run_toy"]

DEFAULTS = {
    "d": 16,
    "tau": 1.0,
    "rho": 0.3,
    "rare_share": 0.0,
    "n": 2000,
    "feature_dim": 2,
    "probe_per_class": 200,
    "test_per_class": 1000,
    "sup_steps": 2000,
    "sup_lr": 0.5,
    "ssl_steps": 600,
    "ssl_lr": 0.05,
    "aug_std": 1.0,
    "init_scale": 0.01,
    "l2": 1e-3,
}


def run_toy(seed=0, **settings):
    """Train the supervised and SSL linear models on one toy setting and measure what the theorem predicts.

    Settings (defaults in `DEFAULTS`): the data `d`, `tau`, `rho`, `rare_share`, `n` (pre-training examples);
    the models `feature_dim` (hidden width of the supervised net = number of SSL features), `sup_steps`,
    `sup_lr`, `ssl_steps`, `ssl_lr`, `aug_std`, `init_scale`; the probes `probe_per_class`,
    `test_per_class` (fresh balanced samples) and `l2`.

    Returns a flat dict of metrics, for `sup` (supervised), `ssl` and `random` (the untrained SSL model's
    initial map, the floor): `<model>_align_e1`, `<model>_align_e2`, and for the bias-free probe (`probe`)
    and the affine one (`probe_affine`) `<model>_<probe>_rare` / `_frequent`; plus the closed forms
    `ssl_cf_align_e1/e2` (population) and `ssl_cf_rel_error` (learned `W^T W` against the minimiser on the
    training sample's second moment).

    Example:

    >>> m = run_toy(seed=0, d=4, n=300, sup_steps=300, ssl_steps=200, probe_per_class=50, test_per_class=50)
    >>> m["ssl_align_e2"] > m["sup_align_e2"]
    True
    """
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown toy settings {unknown}; the settings are {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **settings}
    data = {"d": cfg["d"], "tau": cfg["tau"], "rho": cfg["rho"]}
    x, y, _ = sample_toy(cfg["n"], rare_share=cfg["rare_share"], seed=seed, **data)
    xp, yp, _ = sample_toy(3 * cfg["probe_per_class"], balanced=True, seed=seed + 10_000, **data)
    xt, yt, _ = sample_toy(3 * cfg["test_per_class"], balanced=True, seed=seed + 20_000, **data)
    e1, e2 = toy_basis(cfg["d"])
    common = {"init_scale": cfg["init_scale"], "seed": seed}
    # Supervised learning knows only the labels its data hold: a 2-way head when no rare example was drawn.
    num_classes = 3 if np.any(y == RARE) else 2
    _, w_sup = fit_supervised(
        x, y, hidden_dim=cfg["feature_dim"], num_classes=num_classes, steps=cfg["sup_steps"], lr=cfg["sup_lr"], **common
    )
    _model, w_ssl = fit_ssl(
        x, feature_dim=cfg["feature_dim"], steps=cfg["ssl_steps"], lr=cfg["ssl_lr"], aug_std=cfg["aug_std"], **common
    )
    rng = np.random.default_rng([seed, 31])
    w_rand = rng.normal(size=w_ssl.shape) * cfg["init_scale"]
    out = {}
    for name, w in (("sup", w_sup), ("ssl", w_ssl), ("random", w_rand)):
        out[f"{name}_align_e1"] = alignment(w, e1)
        out[f"{name}_align_e2"] = alignment(w, e2)
        # control: RMS alignment with the label-irrelevant noise directions e3..ed
        out[f"{name}_align_noise"] = float(np.sqrt(np.mean([alignment(w, e) ** 2 for e in np.eye(cfg["d"])[2:]])))
        for probe, bias in (("probe", False), ("probe_affine", True)):
            acc = linear_probe_accuracy(xp @ w.T, yp, xt @ w.T, yt, bias=bias, l2=cfg["l2"])
            out[f"{name}_{probe}_rare"] = acc["acc_rare"]
            out[f"{name}_{probe}_frequent"] = acc["acc_frequent"]
    cf1, cf2 = ssl_closed_form_alignment(cfg["d"], cfg["tau"], cfg["rho"], cfg["rare_share"], cfg["feature_dim"])
    out["ssl_cf_align_e1"], out["ssl_cf_align_e2"] = cf1, cf2
    target = ssl_closed_form(x.astype(np.float64).T @ x / len(x), cfg["feature_dim"])
    out["ssl_cf_rel_error"] = float(np.linalg.norm(w_ssl.T @ w_ssl - target) / np.linalg.norm(target))
    out["n_rare"] = int(np.sum(y == RARE))
    return out
