"""Every recipe's grids and presets in one place: what each recipe runs for each `--preset`.

The protocol's model and training configs are in `keras_ssl_lt.experiments.presets` (smoke, cpu, gpu, paper);
these are the recipes' grids over them (methods, profiles, ratios, samplings, regularisers) and the configs of
the recipes that are not CIFAR-protocol runs (the semi-synthetic construction, the theory toy, ImageNet-LT).

- `GAP`: recipes/robustness_gap.py (Figure 1 and the gap tables);
- `QUICKSTART`: recipes/quickstart.py (the main job);
- `RWSAM`, `RWSAM_VARIANTS`: recipes/rwsam.py (the method claim);
- `SEMI_SYNTHETIC`: recipes/semi_synthetic.py; `TOY_THEORY`: recipes/toy_theory.py;
- `IMAGENET_LT`, `IMAGENET_LT_SMOKE_DATA`, `RWSAM_IMAGENET`: recipes/imagenet_lt.py;
- `LONGTAIL`, `LONGTAIL_ARMS`: recipes/longtail_methods.py (SimCLR, TS, SDCLR, BCL, SimSiam, SimSiam + rwSAM;
  BCL-D on request).

Example:

>>> GAP["cpu"]["methods"], RWSAM["paper"]["method"]
(['simclr', 'supervised'], 'simsiam')
>>> IMAGENET_LT["paper"]()["optimizer"]["weight_decay_convention"]
'coupled'
"""

import copy

from keras_ssl_lt._checks import check_int
from keras_ssl_lt.rwsam.registry import REGULARIZERS

__all__ = [
    "GAP",
    "IMAGENET_LT",
    "IMAGENET_LT_SMOKE_DATA",
    "LONGTAIL",
    "LONGTAIL_ARMS",
    "LONGTAIL_EVAL",
    "QUICKSTART",
    "RWSAM",
    "RWSAM_IMAGENET",
    "RWSAM_VARIANTS",
    "SEMI_SYNTHETIC",
    "TOY_THEORY",
    "longtail_config",
]

# Each preset's grid (the protocol's settings are in keras_ssl_lt.experiments.presets).
GAP = {
    "smoke": dict(methods=["simclr", "supervised"], profiles=["exp"], ratios=[0.1], samplings=[1.0]),
    # 2 methods x 2 subsets x 2 sizes x 3 seeds = 24 runs; measured wall time in docs/results.md.
    "cpu": dict(methods=["simclr", "supervised"], profiles=["exp"], ratios=[0.01], samplings=[1.0, 0.5]),
    "gpu": dict(methods=["simsiam", "supervised"], profiles=["exp"], ratios=[0.01], samplings=[1.0, 0.5]),
    "paper": dict(
        methods=["simsiam", "moco_v2", "supervised"],
        profiles=["exp", "step"],
        ratios=[0.1, 0.01],
        samplings=[1.0, 0.75, 0.5, 0.25, 0.125],
    ),
}

QUICKSTART = {
    "smoke": dict(methods=["simclr", "supervised"], profiles=["exp"], ratios=[0.1], samplings=[1.0]),
    # The target of the main job: every encoder at least 10 points of kNN above its untrained floor.
    "cpu": dict(
        methods=["simclr", "supervised"],
        profiles=["exp"],
        ratios=[0.01],
        samplings=[1.0],
        floor_margin={"knn_acc": 0.10},
    ),
    "gpu": dict(methods=["simsiam", "supervised"], profiles=["exp"], ratios=[0.01], samplings=[1.0]),
    "paper": dict(methods=["simsiam", "supervised"], profiles=["exp"], ratios=[0.01], samplings=[1.0]),
}

RWSAM_VARIANTS = REGULARIZERS
RWSAM = {
    "smoke": dict(method="simclr", profiles=["exp"], ratio=0.1, variants=["none", "rwsam_rank", "rwsam_kde"]),
    # asam (unweighted, the rwSAM radius) separates the radius from the weights; the CPU table has it for seed 0.
    "cpu": dict(method="simclr", profiles=["exp"], ratio=0.01, variants=["none", "sam", "rwsam_rank", "rwsam_kde"]),
    "gpu": dict(method="simsiam", profiles=["exp", "step"], ratio=0.01, variants=list(RWSAM_VARIANTS)),
    "paper": dict(method="simsiam", profiles=["exp", "step"], ratio=0.01, variants=list(RWSAM_VARIANTS)),
}

# recipes/longtail_methods.py: each arm is a registered method and a regulariser (keras_ssl_lt.rwsam.registry).
LONGTAIL_ARMS = {
    "simclr": ("simclr", "none"),
    "ts": ("simclr_ts", "none"),
    "sdclr": ("sdclr", "none"),
    "bcl": ("bcl", "none"),
    "simsiam": ("simsiam", "none"),
    "simsiam_rwsam": ("simsiam", "rwsam_rank"),
    "bcl_d": ("bcl_d", "none"),
}
# The presets' default arms: the six measured in docs/results.md. BCL-D (`bcl_d`) is run with `--arms`; in the
# defaults it would leave every existing record folder a grid with runs to do.
_LONGTAIL_DEFAULT_ARMS = ["simclr", "ts", "sdclr", "bcl", "simsiam", "simsiam_rwsam"]
# `split`: `community_split` arguments (the smoke preset's tiny data hold few images per class).
LONGTAIL = {
    "smoke": dict(arms=["simclr", "ts", "sdclr", "bcl"], balanced=False, split=dict(val_per_class=4, ratio=0.1)),
    "cpu": dict(arms=list(_LONGTAIL_DEFAULT_ARMS), balanced=False, split={}),
    "gpu": dict(arms=list(_LONGTAIL_DEFAULT_ARMS), balanced=False, split={}),
}
# The long-tail evaluation of each preset (keras_ssl_lt.experiments.evaluate): balancedness, k-shot ID probes
# (BCL's 100 / 50 shots, 5 draws) and the TS / SDCLR-style probes on the long-tailed split.
LONGTAIL_EVAL = {
    "smoke": dict(balancedness=True, k_shot=[2], k_shot_draws=2, lt_probe=True),
    "cpu": dict(balancedness=True, k_shot=[100, 50], k_shot_draws=5, lt_probe=True),
    "gpu": dict(balancedness=True, k_shot=[100, 50], k_shot_draws=5, lt_probe=True),
}
# The bank of the ID probe: every non-validation image per class is too many for the CPU; 1,000 (CIFAR-10) or 200
# (CIFAR-100) per class keeps it balanced and above the 100 shots of the k-shot probe.
_LONGTAIL_BANK = {
    "cifar10": {"smoke": None, "cpu": 1000, "gpu": None},
    "cifar100": {"smoke": None, "cpu": 200, "gpu": None},
}


def longtail_config(preset, dataset="cifar10", epochs=None):
    """The protocol config of recipes/longtail_methods.py: the `preset` of `keras_ssl_lt.experiments.presets`
    with the long-tail methods' hyper-parameters (`cfg["methods"]`: `simclr_ts`, `moco_v2_ts`, `sdclr`, `bcl`,
    `bcl_d`) and evaluation; `epochs` replaces the preset's (TS's period follows it).

    TS, SDCLR, BCL and BCL-D start from the preset's SimCLR (heads, learning rate, temperature; `moco_v2_ts` from its
    MoCo v2). TS's period is a fifth of the training, as the authors' 400 epochs of 2,000, and its epoch counts
    fractionally within an epoch (`per_step`), so a short training sees the cosine; SDCLR prunes 90 % of the
    encoder's weights (the authors' CIFAR-LT runs); BCL uses BCL-I's views (`keras_ssl_lt.augment.bcl_cifar("I")`)
    and its momentum 0.97; BCL-D is SDCLR's pruning (0.9) with BCL-D's views (`bcl_cifar("D")`) and momentum 0.97.
    A record's identity holds only its own method's entry (`study.method_identity`), so an entry added here leaves
    the other arms' records valid.

    Example:

    >>> cfg = longtail_config("cpu")
    >>> cfg["methods"]["simclr_ts"]["temperature"]["period_epochs"], cfg["methods"]["sdclr"]["prune_ratio"]
    (1.6, 0.9)
    >>> longtail_config("gpu", epochs=2000)["methods"]["simclr_ts"]["temperature"]["period_epochs"]
    400.0
    """
    from keras_ssl_lt.experiments.presets import get_preset

    if preset not in LONGTAIL:
        raise ValueError(f"`preset` must be one of {sorted(LONGTAIL)}; got {preset!r}")
    if dataset not in _LONGTAIL_BANK:
        raise ValueError(f"`dataset` must be one of {sorted(_LONGTAIL_BANK)}; got {dataset!r}")
    cfg = get_preset(preset)
    if epochs is not None:  # before TS's period, which follows the training length
        cfg["epochs"] = check_int(epochs, "epochs", low=1)
    cfg["bank_per_class"] = _LONGTAIL_BANK[dataset][preset]
    simclr = dict(cfg["methods"]["simclr"])
    # Five periods over the training, as the authors' 400 of 2,000 epochs; `per_step` (the epoch fractional within
    # an epoch) so that a short training samples the cosine smoothly (at whole epochs 1.6 epochs would alias).
    schedule = {"schedule": "cosine", "tau_min": 0.1, "tau_max": 1.0, "period_epochs": float(cfg["epochs"]) / 5.0}
    schedule["per_step"] = True
    cfg["methods"]["simclr_ts"] = dict(simclr, temperature=dict(schedule))
    cfg["methods"]["moco_v2_ts"] = dict(cfg["methods"]["moco_v2"], temperature=dict(schedule))
    cfg["methods"]["sdclr"] = dict(simclr, prune_ratio=0.9)
    cfg["methods"]["bcl"] = dict(simclr, beta=0.97)
    cfg["methods"]["bcl_d"] = dict(simclr, prune_ratio=0.9, beta=0.97)
    cfg["eval"].update(copy.deepcopy(LONGTAIL_EVAL[preset]))
    return cfg


SEMI_SYNTHETIC = {
    # Seconds on a CPU (the test suite runs it): 8-px views, 40 + 4 examples per class, one epoch.
    "smoke": {
        "protocol": "smoke",
        "per_frequent": 40,
        "per_rare": 4,
        "probe_per_class": 30,
        "test_per_class": 40,
        "epochs": 1,
    },
    # The 2-core CPU: the protocol's cpu model (307k-parameter ResNet on 16-px views), 1000 per frequent class.
    # Run end to end with 3 seeds: 35 min of run time on a loaded machine (docs/results.md).
    "cpu": {
        "protocol": "cpu",
        "per_frequent": 1000,
        "per_rare": 10,
        "probe_per_class": 1000,
        "test_per_class": None,
        "epochs": 15,
    },
    # One GPU: ResNet-18 at 32 px, the paper's construction, 200 epochs.
    "gpu": {
        "protocol": "gpu",
        "per_frequent": 5000,
        "per_rare": 10,
        "probe_per_class": None,
        "test_per_class": None,
        "epochs": 200,
    },
    # The paper's construction and the protocol's paper settings (800 epochs).
    "paper": {
        "protocol": "paper",
        "per_frequent": 5000,
        "per_rare": 10,
        "probe_per_class": None,
        "test_per_class": None,
        "epochs": 800,
    },
}

TOY_THEORY = {
    # Seconds: two settings of a tiny problem, for the test suite.
    "smoke": {
        "base": {"d": 6, "n": 300, "sup_steps": 300, "ssl_steps": 200, "probe_per_class": 60, "test_per_class": 100},
        "sweeps": {"rho": [0.3], "rare_share": [0.01]},
    },
    # The full sweep on the CPU (each setting trains two tiny models for a few seconds).
    "cpu": {
        "base": {},
        "sweeps": {"rho": [0.1, 0.3, 0.5, 0.8], "rare_share": [0.0, 0.0005, 0.002, 0.01], "d": [8, 16, 64]},
    },
    # Larger samples and longer training, tighter closed-form agreement (still minutes on a CPU).
    "paper": {
        "base": {"n": 20000, "sup_steps": 8000, "ssl_steps": 2000, "probe_per_class": 1000, "test_per_class": 5000},
        "sweeps": {
            "rho": [0.1, 0.3, 0.5, 0.8],
            "rare_share": [0.0, 0.0001, 0.0005, 0.002, 0.01],
            "d": [8, 16, 64, 256],
        },
    },
}
TOY_THEORY["gpu"] = TOY_THEORY["paper"]

# rwSAM as the authors ran it on ImageNet-LT [code]: adaptive, radius 2, weights 1.005 ** class rank.
RWSAM_IMAGENET = {"rho": 2.0, "rank_base": 1.005}

# MoCo v2 on ImageNet-LT [code]: dim 128, MLP head, queue 65536, momentum 0.999, temperature 0.2, batch 128,
# lr 0.015 cosine, wd 1e-4, blur in the views. SimSiam: its ImageNet heads (2048-2048-2048, predictor 512).
_IMAGENET_METHODS = {
    "moco_v2": {
        "lr": 0.015,
        "projection_dim": 128,
        "projection_hidden_dim": 2048,
        "queue_size": 65536,
        "temperature": 0.2,
        "momentum": 0.999,
    },
    "simsiam": {"lr": 0.025, "projection_dim": 2048, "projection_hidden_dim": 2048, "prediction_hidden_dim": 512},
}


def _imagenet_config(epochs, batch_size, lr_scale, probe, bank_per_class, test_per_class, transfer_epochs):
    methods = copy.deepcopy(_IMAGENET_METHODS)
    for hp in methods.values():
        hp["lr"] *= lr_scale
    return {
        "backbone": {"name": "resnet50", "width": 1},
        "input_size": 224,
        "augment_preset": "moco_v2_imagenet",
        # Files are decoded on the host to 256 px (shorter side, centre crop); the device crops 224.
        "stream": {"image_size": 256, "resize": "center_crop", "shuffle": "global"},
        "image_size": 256,
        "batch_size": batch_size,
        "epochs": epochs,
        # MoCo v2's optimizer: torch.optim.SGD, coupled weight decay 1e-4 (docs/fidelity.md).
        "optimizer": {"momentum": 0.9, "weight_decay": 1e-4, "weight_decay_convention": "coupled"},
        "subset_seed": 0,
        "bank_per_class": bank_per_class,
        "test_per_class": test_per_class,
        "methods": methods,
        "sharpness": dict(RWSAM_IMAGENET),
        "eval": {
            "knn_k": 200,
            "knn_temperature": 0.1,
            "probe": probe,
            "probe_l2": 1e-4,
            "ood": False,
            "few_shot": None,
            "feature_batch_size": 256,
        },
        # fine-tuning transfer [code: SGD Nesterov, backbone lr 0.1x head lr]
        "transfer": {"epochs": transfer_epochs, "head_lr": 0.1, "batch_size": 64, "image_size": 256},
    }


def _imagenet_smoke_config():
    from keras_ssl_lt.experiments.presets import smoke_config

    cfg = smoke_config()
    cfg.update(
        input_size=16,
        augment_preset="moco_v2_imagenet",
        stream={"image_size": 20, "resize": "center_crop", "shuffle": "global"},
        image_size=20,
        batch_size=16,
        bank_per_class=6,
        test_per_class=4,
        sharpness=dict(RWSAM_IMAGENET),
        # one batch per epoch (the whole generated transfer train set): one compiled step on JAX
        transfer={"epochs": 1, "head_lr": 0.05, "batch_size": 64, "image_size": 20},
    )
    cfg["eval"].update(ood=False, knn_k=5)
    cfg["methods"]["moco_v2"]["queue_size"] = 32
    return cfg


IMAGENET_LT = {
    # Seconds on a CPU: generated images in ImageNet-LT's layout, a tiny ResNet at 16 px, one epoch.
    "smoke": _imagenet_smoke_config,
    # One GPU: ResNet-50 at 224, batch 256 (lr scaled linearly from the paper's 0.015 at 128), 100 epochs,
    # a linear probe (L-BFGS logistic regression) on 20 images per class, 20 test images per class.
    "gpu": lambda: _imagenet_config(100, 256, 2.0, "convex", 20, 20, 30),
    # The paper's settings: batch 128, lr 0.015, 200 epochs, the SGD probe (lr 30, 100 epochs) on 50 per class.
    "paper": lambda: _imagenet_config(200, 128, 1.0, "paper", 50, 50, 100),
}
IMAGENET_LT_SMOKE_DATA = {
    "classes": 6,
    "pool_per_class": 24,
    "test_per_class": 6,
    "transfer_classes": 3,
    "transfer_per_class": 12,
}
