"""Trajectory parity: the package's `fit` against the plain-PyTorch reference, step by step, same start, same views.

`run_parity(...)` builds a keras_ssl_lt pre-trainer (small ResNet, no augmenter), copies its initial weights into
the reference (`benchmarks/parity/reference.py`), feeds both the same pre-made views in the same order, trains
both for `steps` steps with the same optimizer semantics (`keras_ssl_lt.optimizers.SGD`, coupled weight decay,
against `torch.optim.SGD`; the same per-step cosine schedule) and the same regulariser, and returns the per-step
running-mean losses of both and the largest weight differences.

What is compared, and how (docs/fidelity.md):

- losses: Keras logs the running mean of the epoch's losses after each step; the reference's running mean of
  its own per-step losses is compared with it;
- trainable weights and moving means: the L2 norm of the difference over all of them, relative to the L2 norm of
  the reference's (per tensor it is reported for the worst tensor only: a BatchNorm shift followed by another
  BatchNorm gets a gradient that is a small difference of large terms, dominated by rounding on both sides);
- moving variances: Keras' BatchNormalization averages the *biased* batch variance, PyTorch's the *unbiased* one
  (a factor n/(n-1), n the values per channel); both are reported, and `moving_variance_ratio` gives the
  largest relative difference, which stays below 1/(n-1) when everything else agrees.

Used by `tests/methods/test_parity.py` (tiny, every backend) and `benchmarks/parity/trajectory.py` (longer runs).
"""

import numpy as np

from keras_ssl_lt._checks import check_choice, check_positive_int

METHODS = ("simsiam", "simclr", "supervised")
REGULARIZERS = ("none", "sam", "asam", "rwsam")


def make_views(steps, batch, num_views, size, seed=0, images=None):
    """Pre-made views `(steps * batch, num_views, size, size, 3)` float32: standard normal, or `images` given."""
    if images is not None:
        views = np.asarray(images, dtype="float32")
        expected = (steps * batch, num_views, size, size, 3)
        if views.shape != expected:
            raise ValueError(f"`images` must have shape {expected} (steps * batch, views, H, W, C); got {views.shape}")
        return views
    rng = np.random.default_rng(seed)
    return rng.standard_normal((steps * batch, num_views, size, size, 3)).astype("float32")


def build_keras(method, size, width, dims, num_classes, num_examples, seed):
    """The package's pre-trainer of `method` on a `small_resnet(width)` with head sizes `dims`, no augmenter."""
    import keras

    import keras_ssl_lt as ksl

    keras.utils.set_random_seed(int(seed))
    enc = ksl.backbones.small_resnet((size, size, 3), width=width)
    common = dict(num_examples=num_examples)
    if method == "simsiam":
        return ksl.SimSiam(
            enc, projection_dim=dims[0], projection_hidden_dim=dims[1], prediction_hidden_dim=dims[2], **common
        )
    if method == "simclr":
        return ksl.SimCLR(enc, projection_dim=dims[0], projection_hidden_dim=dims[1], temperature=0.5, **common)
    return ksl.Supervised(enc, num_classes=num_classes, **common)


def build_reference(method, width, dims, num_classes):
    """The reference model of the same architecture (`benchmarks/parity/reference.py`)."""
    from benchmarks.parity import reference as R

    enc = R.resnet("small_resnet", width)
    if method == "simsiam":
        return R.SimSiam(enc, proj=dims[0], proj_hidden=dims[1], pred_hidden=dims[2])
    if method == "simclr":
        return R.SimCLR(enc, proj=dims[0], proj_hidden=dims[1], temperature=0.5)
    return R.Supervised(enc, num_classes)


def _keras_regularizer(name, rho, weights):
    import keras_ssl_lt as ksl

    if name == "none":
        return None
    if name == "sam":
        return ksl.SAM(rho=rho)
    if name == "asam":
        return ksl.SAM(rho=rho, adaptive=True)
    return ksl.RWSAM(rho=rho, adaptive=True, weights=weights)


def _recorder(model, checkpoints, losses, snapshots, reference_module):
    """A callback logging the running loss after every step and the weights after each checkpoint step."""
    import keras

    class Recorder(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))
            if batch + 1 in checkpoints:
                model._ksl_sync_state()  # JAX: write the values fit holds back to the variables
                snapshots[batch + 1] = reference_module.keras_values(model)

    return Recorder()


def run_parity(
    method="simsiam",
    regularizer="none",
    steps=50,
    batch=16,
    size=8,
    width=0.25,
    dims=(32, 32, 8),
    lr=0.05,
    momentum=0.9,
    weight_decay=5e-4,
    nesterov=False,
    rho=None,
    num_classes=4,
    seed=0,
    views=None,
    checkpoints=(1, 10),
    keras_optimizer="ksl",
    twins=3,
):
    """Trains the package and the reference side by side; returns a dict of per-step losses and weight gaps.

    `keras_optimizer="keras"` trains the package with `keras.optimizers.SGD` instead of
    `keras_ssl_lt.optimizers.SGD` (a deliberate mismatch, to show what a real difference looks like).

    Returns `{"keras_loss", "reference_loss"}` (running means after each step) and `"checkpoints"`, one row per
    step in `checkpoints` (and the last): `"loss_gap"` (max |difference| of the running losses up to that step,
    relative to max |loss|), `"weight_gap"` (||difference|| / ||reference|| over the trainable weights and moving
    means together), `"worst"` and `"worst_gap"` (the tensor of largest relative difference), the same two
    gaps between the reference and its rounding twins (`"rounding_loss_gap"`, `"rounding_weight_gap"`: the widest
    of `twins` references started from weights one float32 ulp away, the growth of rounding alone) and
    `"moving_variance_ratio"` (bounded by `"moving_variance_bound"`, see the module docstring).
    """
    import keras
    import torch

    import keras_ssl_lt as ksl
    from benchmarks.parity import reference as R

    method = check_choice(method, "method", METHODS)
    keras_optimizer = check_choice(keras_optimizer, "keras_optimizer", ("ksl", "keras"))
    regularizer = check_choice(regularizer, "regularizer", REGULARIZERS)
    steps = check_positive_int(steps, "steps")
    batch = check_positive_int(batch, "batch")
    twins = check_positive_int(twins, "twins")
    if batch < 2:
        raise ValueError(f"`batch` must be at least 2 (BatchNorm and the contrastive losses need it); got {batch}")
    num_views = 1 if method == "supervised" else 2
    views = make_views(steps, batch, num_views, size, seed=seed + 1, images=views)
    n = steps * batch
    rng = np.random.default_rng(seed + 2)
    labels = rng.integers(0, num_classes, n).astype("int32")
    example_weights = rng.uniform(0.5, 2.0, n).astype("float32")
    if rho is None:
        rho = {"none": 0.0, "sam": 0.05, "asam": 0.5, "rwsam": 0.5}[regularizer]

    model = build_keras(method, size, width, dims, num_classes, n, seed)
    ref = build_reference(method, width, dims, num_classes)
    R.load_keras_weights(ref, model)
    # The rounding band: twins start from the same weights, each weight moved by one float32 ulp (2^-23) up or
    # down at random. Where the dynamics amplify rounding, which twin crosses a threshold first (a ReLU, a
    # near-tie) is itself random, so the band is the widest of `twins` of them.
    twin_models = []
    for i in range(twins):
        twin = build_reference(method, width, dims, num_classes)
        twin.load_state_dict(ref.state_dict())
        gen = torch.Generator().manual_seed(seed + 3 + i)
        with torch.no_grad():
            for p in twin.parameters():
                p.mul_(1.0 + 2.0**-23 * torch.randint(0, 2, p.shape, generator=gen).mul(2).sub(1).to(p.dtype))
        twin_models.append(twin)

    checkpoints = sorted({int(c) for c in checkpoints if 0 < int(c) <= steps} | {steps})
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    # "keras": Keras' own SGD (decoupled decay) against torch.optim.SGD, the mismatch the harness must expose.
    convention = "coupled" if keras_optimizer == "ksl" else "keras"
    model.compile(
        optimizer=ksl.optimizers.get_sgd(schedule, momentum, weight_decay, convention=convention, nesterov=nesterov),
        sharpness=_keras_regularizer(regularizer, rho, example_weights),
    )
    k_losses, k_snaps = [], {}
    data = {"views": views, "labels": labels, "index": np.arange(n, dtype="int32")}
    callback = _recorder(model, checkpoints, k_losses, k_snaps, R)
    model.fit(data, batch_size=batch, epochs=1, shuffle=False, verbose=0, callbacks=[callback])

    def train_reference(model_ref):
        opt = R.sgd(model_ref, R.cosine_lr(lr, steps), momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
        losses, snaps = [], {}
        for t in range(steps):
            sl = slice(t * batch, (t + 1) * batch)
            vs = [torch.from_numpy(np.ascontiguousarray(views[sl, i].transpose(0, 3, 1, 2))) for i in range(num_views)]
            w = torch.from_numpy(example_weights[sl]) if regularizer == "rwsam" else None
            y = torch.from_numpy(labels[sl]).long()
            losses.append(
                R.train_step(model_ref, opt, vs, y, rho=rho, adaptive=regularizer in ("asam", "rwsam"), weights=w)
            )
            if t + 1 in checkpoints:
                snaps[t + 1] = R.torch_values(model_ref)
        return np.cumsum(losses) / np.arange(1, steps + 1), snaps

    r_loss, r_snaps = train_reference(ref)
    twin_runs = [train_reference(t) for t in twin_models]
    k_loss = np.asarray(k_losses)
    if k_loss.shape != r_loss.shape:
        raise RuntimeError(f"Keras logged {k_loss.size} steps, the reference ran {r_loss.size}")

    rows = []
    for c in checkpoints:
        diff2 = norm2 = var_ratio = 0.0
        twin2 = [0.0] * len(twin_runs)
        per_tensor = {}
        for key, r in r_snaps[c].items():
            k = k_snaps[c][key]
            if key[2] == "moving_variance":
                var_ratio = max(var_ratio, float(np.max(np.abs(r - k) / np.maximum(np.abs(k), 1e-12))))
                continue
            d2 = float(np.sum((r.astype("float64") - k) ** 2))
            diff2 += d2
            for i, (_, t_snaps) in enumerate(twin_runs):
                twin2[i] += float(np.sum((r.astype("float64") - t_snaps[c][key]) ** 2))
            norm2 += float(np.sum(r.astype("float64") ** 2))
            per_tensor[key] = (d2 / max(float(np.sum(r.astype("float64") ** 2)), 1e-24)) ** 0.5
        worst = max(per_tensor, key=per_tensor.get)
        loss_scale = max(float(np.max(np.abs(r_loss[:c]))), 1e-12)
        rows.append(
            {
                "step": c,
                "loss_gap": float(np.max(np.abs(k_loss[:c] - r_loss[:c]))) / loss_scale,
                "rounding_loss_gap": max(float(np.max(np.abs(t[0][:c] - r_loss[:c]))) for t in twin_runs) / loss_scale,
                "weight_gap": (diff2 / norm2) ** 0.5,
                "rounding_weight_gap": (max(twin2) / norm2) ** 0.5,
                "worst": "/".join(worst),
                "worst_gap": per_tensor[worst],
                "moving_variance_ratio": var_ratio,
            }
        )
    return {
        "keras_loss": [float(x) for x in k_loss],
        "reference_loss": [float(x) for x in r_loss],
        "checkpoints": rows,
        "moving_variance_bound": 1.0 / (batch - 1),
    }
