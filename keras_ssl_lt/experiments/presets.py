"""Named configurations of the protocol (`keras_ssl_lt.experiments.protocol`): smoke, cpu, gpu, paper.

A preset is a plain dict: backbone, input size, batch size, epochs, optimiser, per-method hyper-parameters
and the evaluation. `get_preset(name, **overrides)` returns a deep copy with top-level keys replaced.
How the CPU numbers were chosen (by measurement) is in docs/reproducing.md.

Example:

>>> cfg = get_preset("cpu", epochs=2)
>>> cfg["epochs"], cfg["backbone"]["name"], cfg["input_size"]
(2, 'small_resnet', 16)
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["DEFAULT_EVAL", "PRESETS", "get_preset", "smoke_config"]

# The evaluation each config gets unless it says otherwise.
DEFAULT_EVAL = {
    "knn_k": 200,
    "knn_temperature": 0.1,
    "probe": "convex",  # "convex" (L2 logistic regression) or "paper" (SGD lr 30, 100 epochs)
    "probe_l2": 1e-4,
    "ood": True,
    "few_shot": None,  # shots per class of an OOD few-shot probe (None: off)
    "feature_batch_size": 1024,
}


def smoke_config() -> dict:
    """A config that runs in seconds on any backend (a 1-epoch, 8-px, 4-channel model): for tests and dry runs.

    Example:

    >>> smoke_config()["epochs"]
    1
    """
    return {
        "backbone": {"name": "small_resnet", "width": 0.25, "blocks": [1, 1, 1, 1]},
        "input_size": 8,
        "batch_size": 32,
        "epochs": 1,
        "optimizer": {"momentum": 0.9, "weight_decay": 5e-4},
        "precision": "float32",
        "subset_seed": 0,
        "methods": {
            "simsiam": {"lr": 0.05, "projection_dim": 32, "projection_hidden_dim": 32, "prediction_hidden_dim": 16},
            "simclr": {"lr": 0.3, "projection_dim": 16, "projection_hidden_dim": 32, "temperature": 0.2},
            "moco_v2": {
                "lr": 0.06,
                "projection_dim": 16,
                "projection_hidden_dim": 32,
                "queue_size": 64,
                "temperature": 0.2,
                "momentum": 0.99,
            },
            "byol": {"lr": 0.1, "projection_dim": 16, "projection_hidden_dim": 32, "prediction_hidden_dim": 32},
            "supervised": {"lr": 0.1},
        },
        "eval": dict(DEFAULT_EVAL, knn_k=10, feature_batch_size=256),
    }


# The paper's CIFAR heads (PAPER.md) scaled down for a 128-d small ResNet.
_CPU_METHODS = {
    "simclr": {"lr": 0.5, "projection_dim": 128, "projection_hidden_dim": 512, "temperature": 0.2},
    "simsiam": {"lr": 0.06, "projection_dim": 512, "projection_hidden_dim": 512, "prediction_hidden_dim": 128},
    "moco_v2": {
        "lr": 0.06,
        "projection_dim": 128,
        "projection_hidden_dim": 512,
        "queue_size": 4096,
        "temperature": 0.2,
        "momentum": 0.99,
    },
    "byol": {"lr": 0.1, "projection_dim": 128, "projection_hidden_dim": 512, "prediction_hidden_dim": 512},
    "supervised": {"lr": 0.1},
}

_PAPER_METHODS = {
    # SimSiam CIFAR [code]: projector 512-2048-2048, predictor 2048-512-2048, lr 0.06 at batch 512.
    "simsiam": {"lr": 0.06, "projection_dim": 2048, "projection_hidden_dim": 2048, "prediction_hidden_dim": 512},
    # MoCo v2: dim 128, MLP head, temperature 0.2; queue and momentum as the CIFAR variants use.
    "moco_v2": {
        "lr": 0.06,
        "projection_dim": 128,
        "projection_hidden_dim": 2048,
        "queue_size": 4096,
        "temperature": 0.2,
        "momentum": 0.99,
    },
    "simclr": {"lr": 0.5, "projection_dim": 128, "projection_hidden_dim": 2048, "temperature": 0.5},
    "byol": {"lr": 0.1, "projection_dim": 256, "projection_hidden_dim": 4096, "prediction_hidden_dim": 4096},
    "supervised": {"lr": 0.1},
}

PRESETS = {
    "smoke": smoke_config(),
    # The 2-core CPU: a 307k-parameter ResNet on 16x16 views (images are stored at 32x32 and resized on the
    # device), batch 256, 8 epochs; kNN and probes on a balanced 1,000-per-class bank.
    "cpu": {
        "backbone": {"name": "small_resnet", "width": 1.0, "blocks": [1, 1, 1, 1]},
        "input_size": 16,
        "batch_size": 256,
        "epochs": 8,
        # Keras' decoupled decay, as every cpu record so far ran (docs/fidelity.md: at this scale the coupled
        # decay moves SimCLR's kNN by about a point and leaves the rwSAM verdicts unchanged).
        "optimizer": {"momentum": 0.9, "weight_decay": 5e-4, "weight_decay_convention": "keras"},
        "precision": "float32",  # bfloat16 is slow on a CPU
        "subset_seed": 0,
        "bank_per_class": 1000,
        "methods": copy.deepcopy(_CPU_METHODS),
        "eval": dict(DEFAULT_EVAL),
        # Seconds per image-epoch and per evaluation on the 2-core CPU with JAX (docs/reproducing.md), for the
        # dry run's estimates and the ETA.
        "cost": {
            "simclr": 1.8e-3,
            "simsiam": 1.8e-3,
            "moco_v2": 1.9e-3,
            "byol": 2.0e-3,
            "supervised": 1.1e-3,
            "eval": 30.0,
        },
    },
    # One GPU: ResNet-18 at 32x32, 200 epochs. On one H200 a SimCLR epoch of the 6,200-image subset took about
    # 0.4 s and an evaluation 4-25 s (docs/records/gpu_one_config): the recipes' gpu grids should take about an
    # hour (an estimate from those figures; no gpu grid has been run to completion).
    "gpu": {
        # PyTorch's default initialisation (nn.Conv2d, nn.Linear), as the paper's code had it: with Keras' defaults
        # SimSiam learned about 4 kNN points less over 15 epochs at the CPU scale (docs/fidelity.md, 3 seeds).
        "backbone": {"name": "resnet18_cifar", "width": 1.0, "kernel_initializer": "torch"},
        "input_size": 32,
        "batch_size": 512,
        "epochs": 200,
        # The paper's optimizer: torch.optim.SGD's coupled weight decay 5e-4 (keras_ssl_lt.optimizers.SGD).
        "optimizer": {"momentum": 0.9, "weight_decay": 5e-4, "weight_decay_convention": "coupled"},
        # bfloat16 compute, float32 weights and losses (no loss scaling needed): the precision whose speed
        # benchmarks/gpu_check.py measured on one H200 (issue 21: 38,845 images/s for SimSiam's fit on JAX).
        # Every record says which precision it ran (`conventions`).
        "precision": "mixed_bfloat16",
        "subset_seed": 0,
        "bank_per_class": None,
        "methods": {m: dict(hp, head_init="torch") for m, hp in copy.deepcopy(_PAPER_METHODS).items()},
        "eval": dict(DEFAULT_EVAL),
    },
}
# The paper's settings (PAPER.md): the gpu preset with 800 epochs and the paper's SGD linear probe.
PRESETS["paper"] = dict(copy.deepcopy(PRESETS["gpu"]), epochs=800, eval=dict(DEFAULT_EVAL, probe="paper"))
PRESETS["smoke"]["bank_per_class"] = None


def get_preset(name: str, **overrides: Any) -> dict:
    """A deep copy of preset `name` with top-level keys replaced by `overrides`.

    Example:

    >>> get_preset("smoke")["epochs"]
    1
    """
    if name not in PRESETS:
        raise ValueError(f"`preset` must be one of {sorted(PRESETS)}; got {name!r}")
    cfg = copy.deepcopy(PRESETS[name])
    for k, v in overrides.items():
        if k not in cfg:
            raise ValueError(f"unknown config key {k!r} for preset {name!r}; known: {sorted(cfg)}")
        cfg[k] = copy.deepcopy(v)
    return cfg
