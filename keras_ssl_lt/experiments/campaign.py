"""A GPU campaign that survives short leases: a declared grid, a data slice that travels, time-boxed chunks.

GPU time comes in short leases (at most 10 minutes per command, 64 MiB carried to the machine, a few small files
back). A campaign is a grid of runs in priority order (`CLAIM3_GRID`: the paper's method claim), a slice of
CIFAR-10 that holds every image those runs touch (`build_slice` / `load_slice`), and `run_chunk`, which picks the
next unfinished runs that fit the time left, estimated from the records already committed, runs them with the
protocol (`protocol.run`), and writes one small JSON record per run. Whoever holds a lease runs the next chunk
(`scripts/gpu_campaign.sh`) and commits the records it returns; the results page is regenerated from them.

Every record carries the slice's manifest hash (`slice_sha256`), the subset's manifest hash (the same as a draw
on the full CIFAR-10 here: the slice stores the full label array and draws nothing itself), the precision and
the optimizer convention (`conventions`).

Example (a plan over two entries with one record already done):

>>> grid = [{"name": "a", "method": "simsiam", "ratio": 0.01, "sharpness": "none", "seed": 0, "epochs": 800},
...         {"name": "b", "method": "simsiam", "ratio": 0.01, "sharpness": "rwsam_rank", "seed": 0, "epochs": 800}]
>>> [s.method for s in grid_specs(grid, preset="paper")]
['simsiam', 'simsiam']
"""

import hashlib
import json
import time

import numpy as np

__all__ = [
    "CLAIM3_GRID",
    "PRIOR_IMAGES_PER_SECOND",
    "build_slice",
    "estimate_seconds",
    "grid_specs",
    "load_slice",
    "plan",
    "report",
    "run_chunk",
]

_SLICE_FORMAT = "keras-ssl-lt/campaign-slice/1"

# The claim-3 grid in the priority order (docs/results.md, claim 3): SimSiam on CIFAR-10-LT exp r = 0.01
# (n = 12,406), rwSAM as the authors ran it (ASAM radius 7, weights 1.2^rank, the paper's coupled decay: the
# `paper` preset), the balanced counterpart, SAM, rwSAM with KDE weights, the unweighted ASAM control; then seeds
# 1 and 2; then 1600 epochs for rwSAM (the authors' README). The step profile needs a slice built with it.
# The last arm is what the authors' released code actually ran (see below).
_ARMS = (
    ("simsiam_lt", 0.01, "none"),
    ("rwsam_rank", 0.01, "rwsam_rank"),
    ("simsiam_balanced", 1.0, "none"),
    ("sam", 0.01, "sam"),
    ("rwsam_kde", 0.01, "rwsam_kde"),
    ("asam_control", 0.01, "asam"),
    # What the authors' released CIFAR code ran by default (docs/rwsam.md): its loss dropped the example weights,
    # so unweighted ASAM at radius 7, with BatchNorm statistics updated on both passes.
    ("authors_code", 0.01, "asam", "both"),
)


def _entry(name, ratio, sharpness, seed, epochs=800, profile="exp", bn_update=None):
    entry = {
        "name": name,
        "method": "simsiam",
        "profile": profile,
        "ratio": ratio,
        "sharpness": sharpness,
        "seed": seed,
        "epochs": epochs,
    }
    if bn_update is not None:
        entry["bn_update"] = bn_update
    return entry


CLAIM3_GRID = (
    [
        _entry(f"{arm}_seed{seed}", r, s, seed, bn_update=(bn or [None])[0])
        for seed in (0, 1, 2)
        for arm, r, s, *bn in _ARMS
    ]
    + [_entry(f"{arm}_step_seed0", r, s, 0, profile="step") for arm, r, s, *_ in _ARMS[:3]]
    + [_entry(f"rwsam_rank_1600_seed{seed}", 0.01, "rwsam_rank", seed, epochs=1600) for seed in (0, 1, 2)]
)

# Images per second of one pre-training step when no record of that kind exists yet: what benchmarks/gpu_check.py
# measured for SimSiam's `fit` on one H200 (JAX, mixed_bfloat16, batch 512: 38,845 images/s), the SAM-type step
# at the measured 1.96x cost, and rwSAM with KDE weights with one more forward pass over the subset per epoch
# (about a sixth of a two-pass epoch; not measured). The records replace these as soon as they exist.
PRIOR_IMAGES_PER_SECOND = {"plain": 38845.0, "two_pass": 38845.0 / 1.96, "two_pass_kde": 38845.0 / 1.96 * 0.85}
# Seconds outside the epochs (compilation, the floor and the evaluation) when no record exists yet.
PRIOR_OVERHEAD_SECONDS = 90.0


def _entry_fields(entry):
    allowed = {"name", "method", "profile", "ratio", "sharpness", "seed", "epochs", "bn_update"}
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ValueError(f"grid entry {entry.get('name')!r} has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted({"name", "method", "ratio", "seed", "epochs"} - set(entry))
    if missing:
        raise ValueError(f"grid entry {entry.get('name')!r} lacks {missing}")
    return entry


def grid_specs(grid, preset="paper", dataset="cifar10", counterpart_of=0.01):
    """The `RunSpec` of each grid entry (same order); the epochs and the regulariser are in the spec's `extra`."""
    from keras_ssl_lt.experiments.records import RunSpec

    specs = []
    for entry in grid:
        e = _entry_fields(dict(entry))
        extra = {"sharpness": e.get("sharpness", "none"), "cfg.epochs": int(e["epochs"]), "campaign": e["name"]}
        if "bn_update" in e:
            extra["cfg.sharpness.bn_update"] = e["bn_update"]
        if float(e["ratio"]) == 1.0:
            extra["counterpart_of"] = counterpart_of
        specs.append(
            RunSpec(
                e["method"],
                dataset=dataset,
                profile=e.get("profile", "exp"),
                ratio=float(e["ratio"]),
                seed=int(e["seed"]),
                preset=preset,
                extra=extra,
            )
        )
    return specs


# ------------------------------------------------------------------------------------------------ the slice


def _encode(images):
    # Horizontal deltas (wrapping uint8 arithmetic): CIFAR's neighbouring pixels are close, so the deltas
    # compress to about 80 % of the raw images' zlib size. Lossless: `_decode` is the running sum mod 256.
    d = images.copy()
    d[:, :, 1:] = images[:, :, 1:] - images[:, :, :-1]
    return d


def _decode(deltas):
    return np.cumsum(deltas, axis=2, dtype=np.uint8)


def _sha256_json(obj):
    return hashlib.sha256(
        json.dumps(obj, sort_keys=True, default=lambda o: np.asarray(o).tolist()).encode()
    ).hexdigest()


def build_slice(x_train, y_train, x_test, y_test, path, ratio=0.01, profiles=("exp",), bank_per_class=1000,
                test_per_class=300, seed=0):  # fmt: skip
    """Writes the campaign's data slice to `path` (compressed .npz) and returns its manifest.

    The slice holds every training image of the long-tailed subsets (`profiles` at `ratio`, subset seed 0 as
    the protocol draws them) and of their balanced counterparts, a class-balanced probe / kNN bank of
    `bank_per_class` per class drawn from those images, and `test_per_class` test images per class. It stores
    the full training label array, so the subsets drawn from it are exactly the protocol's draws on the full set.

    Example:

    >>> import tempfile, os
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(np.arange(4), 50); x = rng.integers(0, 256, (200, 8, 8, 3), dtype="uint8")
    >>> path = os.path.join(tempfile.mkdtemp(), "slice.npz")
    >>> m = build_slice(x, y, x[::5], y[::5], path, ratio=0.1, bank_per_class=5, test_per_class=2)
    >>> s = load_slice(path)
    >>> s.sha256 == m["sha256"], len(s.data.test[1])
    (True, 8)
    """
    from keras_ssl_lt._checks import check_fraction, check_labels, check_positive_int
    from keras_ssl_lt.data import balanced_counterpart, make_subset

    x_train, x_test = np.asarray(x_train), np.asarray(x_test)
    y_train = check_labels(y_train, "y_train")
    y_test = check_labels(y_test, "y_test")
    if x_train.dtype != np.uint8 or x_train.ndim != 4 or len(x_train) != len(y_train):
        raise ValueError(
            f"`x_train` must be uint8 (N, H, W, C) matching `y_train`; got {x_train.dtype} {x_train.shape}"
        )
    if x_test.dtype != np.uint8 or x_test.shape[1:] != x_train.shape[1:] or len(x_test) != len(y_test):
        raise ValueError(f"`x_test` must be uint8 {x_train.shape[1:]} images matching `y_test`; got {x_test.shape}")
    ratio = check_fraction(ratio, "ratio")
    bank_per_class = check_positive_int(bank_per_class, "bank_per_class")
    test_per_class = check_positive_int(test_per_class, "test_per_class")
    subsets = {}
    for profile in profiles:
        lt = make_subset(y_train, profile=profile, ratio=ratio, seed=0)
        subsets[profile] = (lt, balanced_counterpart(y_train, lt, seed=0))
    union = np.unique(np.concatenate([s.indices for pair in subsets.values() for s in pair]))
    classes = np.unique(y_train)
    rng = np.random.default_rng([int(seed), 7])
    bank = []
    for c in classes:
        pool = union[y_train[union] == c]
        if pool.size < bank_per_class:
            raise ValueError(f"`bank_per_class`={bank_per_class} exceeds the slice's {pool.size} images of class {c}")
        bank.append(rng.choice(pool, bank_per_class, replace=False))
    bank = np.sort(np.concatenate(bank))
    test = []
    for c in classes:
        pool = np.flatnonzero(y_test == c)
        if pool.size < test_per_class:
            raise ValueError(f"`test_per_class`={test_per_class} exceeds the {pool.size} test images of class {c}")
        test.append(rng.choice(pool, test_per_class, replace=False))
    test = np.sort(np.concatenate(test))
    manifest = {
        "format": _SLICE_FORMAT,
        "ratio": ratio,
        "profiles": list(profiles),
        "train_images_sha256": hashlib.sha256(np.ascontiguousarray(x_train[union]).tobytes()).hexdigest(),
        "train_index": union.tolist(),
        "bank_index": bank.tolist(),
        "test_index": test.tolist(),
        "subsets": {p: [_sha256_json(lt.manifest), _sha256_json(bal.manifest)] for p, (lt, bal) in subsets.items()},
        "seed": int(seed),
    }
    manifest["sha256"] = _sha256_json(manifest)
    np.savez_compressed(
        path,
        x_train_delta=_encode(x_train[union]),
        y_train_full=y_train,
        x_test_delta=_encode(x_test[test]),
        y_test=y_test[test],
        manifest=np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8),
    )
    return manifest


class CampaignSlice:
    """A loaded slice: `data` (an `EvalData` over the full-size training set), `subset(spec, cfg)`, `sha256`.

    The training source has the full set's size and labels, with the slice's images in their places and zeros
    elsewhere: the protocol's subsets, rank weights and bank are those of the full set, and `subset` refuses a
    draw that would touch an image the slice does not hold.
    """

    def __init__(self, x_train, y_train_full, x_test, y_test, manifest):
        from keras_ssl_lt.data import from_arrays
        from keras_ssl_lt.experiments.evaldata import EvalData

        self.manifest = manifest
        self.sha256 = manifest["sha256"]
        self.train_index = np.asarray(manifest["train_index"], dtype=np.int64)
        x_full = np.zeros((y_train_full.size,) + x_train.shape[1:], np.uint8)
        x_full[self.train_index] = x_train
        self.data = EvalData(
            from_arrays(x_full, y_train_full),
            (x_test, y_test),
            bank_index=np.asarray(manifest["bank_index"], dtype=np.int64),
            name="cifar10 (campaign slice)",
        )

    def subset(self, spec, cfg):
        """The protocol's subset of `spec` (`draw_subset` on the full label array), checked to lie in the slice."""
        from keras_ssl_lt.experiments.evaldata import draw_subset

        if spec.profile not in self.manifest["profiles"]:
            raise ValueError(
                f"this slice holds the profiles {self.manifest['profiles']}; {spec.run_id} needs {spec.profile!r}: "
                "build a slice with it (scripts/make_campaign_slice.py --profiles)"
            )
        subset = draw_subset(self.data.source.labels, spec, cfg)
        if not np.isin(subset.indices, self.train_index).all():
            raise ValueError(f"{spec.run_id}: its subset is not inside this slice (another ratio or subset seed?)")
        return subset


def load_slice(path):
    """Reads a slice written by `build_slice`, checking its manifest hash."""
    with np.load(path) as f:
        try:
            manifest = json.loads(bytes(f["manifest"]).decode())
            x_train, y_full = _decode(f["x_train_delta"]), f["y_train_full"]
            x_test, y_test = _decode(f["x_test_delta"]), f["y_test"]
        except KeyError as e:
            raise ValueError(f"{path} is not a campaign slice (missing {e}); build one with build_slice") from None
    if manifest.get("format") != _SLICE_FORMAT:
        raise ValueError(f"{path}: slice format {manifest.get('format')!r}, expected {_SLICE_FORMAT!r}")
    claimed = manifest.pop("sha256", None)
    if claimed != _sha256_json(manifest):
        raise ValueError(f"{path}: the slice's manifest does not match its hash (edited or truncated)")
    manifest["sha256"] = claimed
    if hashlib.sha256(np.ascontiguousarray(x_train).tobytes()).hexdigest() != manifest["train_images_sha256"]:
        raise ValueError(f"{path}: the slice's images do not match its manifest")
    return CampaignSlice(x_train, y_full, x_test, y_test, manifest)


# ------------------------------------------------------------------------------------------------ planning


def _kind(extra):
    sharpness = dict(extra).get("sharpness", "none")
    return "plain" if sharpness == "none" else ("two_pass_kde" if sharpness == "rwsam_kde" else "two_pass")


def estimate_seconds(spec, n, records):
    """Seconds one run of `spec` on `n` images should take, from `records`' timings (else the priors).

    Images per second: the median over done records of the same kind (plain, two-pass, two-pass with KDE) of
    n * epochs / train_seconds; a kind without records takes the other kind's rate scaled by the priors' ratio.
    Overhead (compilation, floor, evaluation): the median of those records' other seconds.
    Returns `(seconds, source)` with `source` "records" or "prior".
    """
    rates = {k: [] for k in PRIOR_IMAGES_PER_SECOND}
    overheads = []
    for r in records:
        if r.get("status") != "done" or "timings" not in r:
            continue
        t, spec_r = r["timings"], r["spec"]
        extra = spec_r.get("extra", {})
        extra = dict(extra) if isinstance(extra, dict) else {k: v for k, v in extra}
        epochs = len(r.get("history", {}).get("loss", [])) or int(extra.get("cfg.epochs", 0))
        if t.get("train_seconds", 0) > 0 and epochs:
            rates[_kind(extra)].append(r["n"] * epochs / t["train_seconds"])
            overheads.append(float(r.get("wall_seconds", 0.0)) - t["train_seconds"])
    kind = _kind(spec.extra)
    measured = [k for k in rates if rates[k]]
    if rates[kind]:
        rate, source = float(np.median(rates[kind])), "records"
    elif measured:  # another kind's measured rate, scaled by the priors' ratio
        other = measured[0]
        scale = PRIOR_IMAGES_PER_SECOND[kind] / PRIOR_IMAGES_PER_SECOND[other]
        rate, source = float(np.median(rates[other])) * scale, "records"
    else:
        rate, source = PRIOR_IMAGES_PER_SECOND[kind], "prior"
    overhead = float(np.median(overheads)) if overheads else PRIOR_OVERHEAD_SECONDS
    epochs = int(dict(spec.extra)["cfg.epochs"])
    return n * epochs / rate + max(overhead, 0.0), source


def plan(specs, records, budget_seconds, sizes, slice_sha256=None):
    """The specs to run now: in grid order, skipping done ones, each only if its estimate fits what is left.

    `sizes` maps a spec's run_id to its subset size n. A record counts as done only when it was measured on the
    slice `slice_sha256` (when given). Returns a list of `(spec, estimated_seconds, source)`.
    """
    done = {
        r["run_id"]
        for r in records
        if r.get("status") == "done" and (slice_sha256 is None or r.get("slice_sha256") == slice_sha256)
    }
    left, out = float(budget_seconds), []
    for spec in specs:
        if spec.run_id in done:
            continue
        est, source = estimate_seconds(spec, sizes[spec.run_id], records)
        if est <= left:
            out.append((spec, est, source))
            left -= est
    return out


def run_chunk(slice_, specs, cfg, records_dir, out_dir, budget_seconds, verbose=2, log=print):
    """Runs the planned chunk: every unfinished spec that fits `budget_seconds`, records written to `out_dir`.

    `records_dir` holds the records already committed (read for what is done and for the estimates); new
    records go to `out_dir` (they come back from the lease and are committed to `records_dir`). A run whose
    estimate no longer fits the time left when its turn comes is not started. Returns the new records.
    """
    from keras_ssl_lt.experiments import protocol
    from keras_ssl_lt.experiments.records import environment, read_records, write_record

    t0 = time.time()
    records = read_records(records_dir) + [r for r in read_records(out_dir) if r.get("status") == "done"]
    sizes = {s.run_id: slice_.subset(s, cfg).n for s in specs}
    chosen = plan(specs, records, budget_seconds, sizes, slice_sha256=slice_.sha256)
    log(
        f"campaign: {len(chosen)} run(s) fit {budget_seconds:.0f} s: "
        + ", ".join(f"{dict(s.extra)['campaign']} (~{e:.0f} s, {src})" for s, e, src in chosen)
    )
    new = []
    for spec, est, _ in chosen:
        left = budget_seconds - (time.time() - t0)
        est, _ = estimate_seconds(spec, sizes[spec.run_id], records + new)
        if est > left:
            log(f"campaign: {dict(spec.extra)['campaign']} not started (~{est:.0f} s > {left:.0f} s left)")
            continue
        start = time.time()
        res = protocol.run(spec, cfg, slice_.data, verbose=verbose, subset=slice_.subset)
        rec = dict(
            res,
            spec=spec.to_dict(),
            status="done",
            slice_sha256=slice_.sha256,
            environment=environment(),
            wall_seconds=time.time() - start,
            estimated_seconds=est,
        )
        write_record(out_dir, rec)
        new.append(dict(rec, run_id=spec.run_id))
        m = res["metrics"]
        log(
            f"campaign: {dict(spec.extra)['campaign']} done in {rec['wall_seconds']:.0f} s (estimated {est:.0f}): "
            f"knn {m.get('knn_acc', float('nan')):.4f} (floor {m.get('floor_knn_acc', float('nan')):.4f})"
        )
    return new


# ------------------------------------------------------------------------------------------------ the report


def _arm_of(name):
    # "rwsam_rank_1600_seed2" -> "rwsam_rank_1600"
    return name.rsplit("_seed", 1)[0]


def report(records, grid=CLAIM3_GRID):
    """The claim-3 table of the campaign's records (markdown): every grid arm, measured or not, with its verdict.

    One row per arm (seeds pooled): seeds done, kNN and linear-probe accuracy beside the untrained floor, kNN on
    the few-shot classes, the epochs and the seconds. An arm's verdict against plain SimSiam on the same
    long-tailed data and epochs: "reproduced" when its mean kNN on the few-shot classes is higher by more than
    the larger of the two seed standard deviations, "not reproduced" when it is not, "not yet measured" with
    fewer than 2 seeds of either. Arms never run say so; nothing is estimated.

    >>> print(report([]).splitlines()[2].split(" | ")[:3])
    ['| simsiam_lt', '0 of 3', 'not yet measured']
    """
    by_name = {}
    for r in records:
        if r.get("status") != "done":
            continue
        extra = r["spec"].get("extra", {})
        extra = dict(extra) if isinstance(extra, dict) else {k: v for k, v in extra}
        by_name[extra.get("campaign")] = r
    arms = {}
    for e in grid:
        arms.setdefault(_arm_of(e["name"]), []).append(e)

    def values(arm, key):
        return [by_name[e["name"]]["metrics"][key] for e in arms[arm] if e["name"] in by_name]

    def cell(vals, scale=100.0):
        if not vals:
            return ""
        v = np.asarray(vals, dtype=float) * scale
        return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v[0]:.2f}"

    lines = [
        "| arm | seeds | verdict (few-shot kNN vs plain) | kNN (%) | floor kNN (%) | kNN few (%) | probe (%) "
        "| floor probe (%) | epochs | minutes per run |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, entries in arms.items():
        done = [e for e in entries if e["name"] in by_name]
        e0 = entries[0]
        base = "simsiam_lt" if e0.get("profile", "exp") == "exp" else "simsiam_lt_step"
        if arm.startswith("simsiam_"):
            verdict = "(baseline)" if done else "not yet measured"
        else:
            mine, plain = values(arm, "knn_acc_few"), values(base, "knn_acc_few") if base in arms else []
            if len(mine) < 2 or len(plain) < 2:
                verdict = "not yet measured"
            else:
                spread = max(np.std(mine, ddof=1), np.std(plain, ddof=1))
                verdict = "reproduced" if np.mean(mine) - np.mean(plain) > spread else "not reproduced"
        minutes = [by_name[e["name"]].get("wall_seconds", float("nan")) / 60 for e in done]
        lines.append(
            f"| {arm} | {len(done)} of {len(entries)} | {verdict} | {cell(values(arm, 'knn_acc'))} "
            f"| {cell(values(arm, 'floor_knn_acc'))} | {cell(values(arm, 'knn_acc_few'))} "
            f"| {cell(values(arm, 'probe_acc'))} | {cell(values(arm, 'floor_probe_acc'))} | {e0['epochs']} "
            f"| {cell(minutes, scale=1.0)} |"
        )
    return "\n".join(lines)
