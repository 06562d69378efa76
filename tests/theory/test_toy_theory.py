"""The theory toy model: data as stated, both learners trained with fit against closed forms, the theorem."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_ssl_lt.theory import (
    LinearSSL,
    alignment,
    fit_ssl,
    fit_supervised,
    linear_probe_accuracy,
    run_toy,
    sample_toy,
    ssl_closed_form,
    ssl_closed_form_alignment,
    ssl_objective,
    supervised_min_norm_features,
    toy_basis,
    toy_second_moment,
)

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "toy_theory.py"


def test_samples_follow_the_stated_distribution():
    x, y, q = sample_toy(400, d=5, tau=2.0, rho=0.0, rare_share=0.05, seed=3)
    assert np.bincount(y).tolist() == [190, 190, 20]
    e1, e2 = toy_basis(5)
    expected = np.where((y == 2)[:, None], e2, np.where((y == 0)[:, None], e1, -e1) - (2.0 * q)[:, None] * e2)
    np.testing.assert_allclose(x, expected, atol=0)
    assert 0.35 < q[y != 2].mean() < 0.65 and not q[y == 2].any()
    x2, _y2, _ = sample_toy(400, d=5, tau=2.0, rho=0.0, rare_share=0.05, seed=3)
    np.testing.assert_array_equal(x, x2)
    xb, yb, _ = sample_toy(30, d=3, balanced=True, rho=0.5, seed=0)
    assert np.bincount(yb).tolist() == [10, 10, 10] and xb.dtype == np.float32


def test_second_moment_closed_form_matches_a_large_sample():
    x, _, _ = sample_toy(200_000, d=4, tau=1.5, rho=0.4, rare_share=0.1, seed=0)
    emp = x.astype(np.float64).T @ x / len(x)
    np.testing.assert_allclose(emp, toy_second_moment(4, 1.5, 0.4, 0.1), atol=0.02)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 10, "d": 1}, "`d`"),
        ({"n": 10, "rho": -1.0}, "`rho`"),
        ({"n": 10, "rare_share": 1.5}, "`rare_share`"),
        ({"n": 0}, "`n`"),
        ({"n": 10, "tau": True}, "`tau`"),
        ({"n": 10, "seed": -2}, "`seed`"),
    ],
)
def test_sample_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_toy(**kwargs)


def test_ssl_objective_matches_numpy():
    rng = np.random.default_rng(0)
    za, zb, k = rng.normal(size=(5, 3)), rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    expected = -np.mean(np.sum(za * zb, axis=1)) + 0.5 * np.sum((k @ k.T) ** 2)
    got = float(
        keras.ops.convert_to_numpy(
            ssl_objective(*(keras.ops.convert_to_tensor(a.astype("float32")) for a in (za, zb, k)))
        )
    )
    assert got == pytest.approx(expected, rel=1e-5)


def test_ssl_fit_reaches_the_eigendecomposition_minimiser():
    # Tiny case with distinct eigenvalues: the learned W^T W equals the top-2 truncation of X^T X / n.
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(256, 4)) * [1.5, 1.0, 0.5, 0.2]).astype("float32")
    _, w = fit_ssl(x, feature_dim=2, steps=400, lr=0.1, aug_std=0.0, init_scale=0.05, seed=0)
    target = ssl_closed_form(x.astype(np.float64).T @ x / len(x), 2)
    assert np.linalg.norm(w.T @ w - target) / np.linalg.norm(target) < 1e-2
    vals, vecs = np.linalg.eigh(target)
    top = vecs[:, np.argsort(vals)[::-1][:2]]
    # the learned row space is the span of the top two eigenvectors
    np.testing.assert_allclose(np.linalg.svd(w @ top, compute_uv=False), np.linalg.svd(w, compute_uv=False), rtol=1e-3)


def test_ssl_fit_with_positive_pair_noise_matches_the_population_closed_form():
    x, _, _ = sample_toy(4000, d=6, tau=1.0, rho=0.3, seed=0)
    _, w = fit_ssl(x, feature_dim=2, steps=500, lr=0.05, aug_std=1.0, seed=0)
    a1, a2 = ssl_closed_form_alignment(6, 1.0, 0.3, 0.0, 2)
    e1, e2 = toy_basis(6)
    assert alignment(w, e1) == pytest.approx(a1, abs=0.03)
    assert alignment(w, e2) == pytest.approx(a2, abs=0.05)


def test_linear_ssl_config_round_trip_and_predict():
    model = LinearSSL(5, 3, aug_std=0.5, init_scale=0.1, seed=4)
    clone = LinearSSL.from_config(model.get_config())
    assert (clone.input_dim, clone.feature_dim, clone.aug_std, clone.seed) == (5, 3, 0.5, 4)
    x = np.ones((2, 5), "float32")
    np.testing.assert_allclose(model.features(x), x @ model.get_weights_matrix().T, rtol=1e-5)
    with pytest.raises(ValueError, match="feature_dim"):
        LinearSSL(5, 0)


def test_supervised_gradient_descent_converges_to_the_min_norm_direction():
    x, y, _ = sample_toy(400, d=6, tau=1.0, rho=0.0, seed=0)  # no rare example: two labels
    _, w1 = fit_supervised(x, y, hidden_dim=2, num_classes=2, steps=600, lr=0.5, seed=0)
    direction = np.linalg.svd(w1)[2][0]
    assert abs(direction @ supervised_min_norm_features(6)[0]) > 0.999
    e1, e2 = toy_basis(6)
    assert alignment(w1, e1) > 0.99 and alignment(w1, e2) < 0.02


def test_alignment_and_probe_against_references():
    assert alignment(np.eye(3)[:2] * [[3.0], [1.0]], [0, 1, 0]) == pytest.approx(1 / 3)
    assert alignment(np.zeros((2, 3)), [1, 0, 0]) == 0.0
    with pytest.raises(ValueError, match="direction"):
        alignment(np.eye(3), [0, 0, 0])
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 60)
    f = np.array([[1.0, 0.2], [-1.0, 0.1], [0.3, 1.0]])[y] + 0.6 * rng.normal(size=(180, 2))
    ft = np.array([[1.0, 0.2], [-1.0, 0.1], [0.3, 1.0]])[y] + 0.6 * rng.normal(size=(180, 2))
    l2 = 1e-2
    ours = linear_probe_accuracy(f, y, ft, y, bias=False, l2=l2)
    scale = np.sqrt(np.mean(f**2))
    ref = sklearn.LogisticRegression(C=1 / (l2 * len(y)), fit_intercept=False, tol=1e-10, max_iter=10_000)
    pred = ref.fit(f / scale, y).predict(ft / scale)
    assert ours["acc"] == pytest.approx(np.mean(pred == y), abs=1 / 180 + 1e-9)
    assert ours["acc_rare"] == pytest.approx(np.mean(pred[y == 2] == 2), abs=1 / 60 + 1e-9)


def test_the_theorem_numerically():
    # Rare share 0: supervised features keep e1 but lose e2 (no more than a noise direction); SSL keeps both,
    # and a linear probe on SSL features recognises the rare class where one on supervised features cannot.
    m = run_toy(seed=0, d=8, n=800, sup_steps=800, ssl_steps=400, probe_per_class=100, test_per_class=200)
    assert m["sup_align_e1"] > 0.9 and m["ssl_align_e1"] > 0.9
    assert m["sup_align_e2"] < 0.15 and m["ssl_align_e2"] > 0.6
    assert m["ssl_align_e2"] == pytest.approx(m["ssl_cf_align_e2"], abs=0.06)
    assert m["ssl_probe_rare"] > 0.9 and m["sup_probe_rare"] < 0.3
    assert m["n_rare"] == 0
    with pytest.raises(ValueError, match="unknown toy settings"):
        run_toy(seed=0, noise=1.0)


def test_recipe_smoke(tmp_path):
    spec = importlib.util.spec_from_file_location("toy_theory_recipe", RECIPE)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    rows = recipe.main(["--preset", "smoke", "--seeds", "1", "--out", str(tmp_path)])
    assert {r["sweep"] for r in rows} == {"rho", "rare_share"}
    assert (tmp_path / "table.md").read_text().count("\n") >= 4
    again = recipe.main(["--preset", "smoke", "--seeds", "1", "--out", str(tmp_path)])  # resumes: nothing reruns
    assert [r["ssl_probe_rare_mean"] for r in again] == [r["ssl_probe_rare_mean"] for r in rows]
    with pytest.raises(ValueError, match="--sweeps"):
        recipe.make_specs("smoke", [0], ["tau"])
