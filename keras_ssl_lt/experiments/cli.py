"""The command-line convention shared by every recipe: --preset, --data, --out, --seeds, --dry-run.

The backend comes from `KERAS_BACKEND` (never a flag); every recipe ends by printing where its tables and
figures went (`print_outputs`).

Example:

>>> import argparse
>>> parser = add_common_args(argparse.ArgumentParser(), presets=("smoke", "cpu"), default_out="results/demo")
>>> args = parser.parse_args(["--preset", "smoke", "--seeds", "3"])
>>> args.preset, args.seeds, args.data, args.out, args.dry_run
('smoke', [0, 1, 2], None, 'results/demo', False)
>>> parse_seeds("4,2,7")
[4, 2, 7]
"""

import argparse
import os
import sys
from pathlib import Path

__all__ = ["add_common_args", "parse_seeds", "print_outputs"]


def parse_seeds(text):
    """Seeds from the command line: a comma list ("0,1,2", "7,") or a count ("3" means 0, 1, 2).

    A single number is always a count; write "7," for seed 7 alone. Seeds are non-negative integers
    without repeats; a ValueError names the problem.

    >>> parse_seeds("3"), parse_seeds("0,1,2"), parse_seeds("7,"), parse_seeds(" 5 , 6 ")
    ([0, 1, 2], [0, 1, 2], [7], [5, 6])
    """
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`--seeds` must be a count such as '3' or a list such as '0,1,2'; got {text!r}")
    parts = [p.strip() for p in text.split(",")]
    is_list = len(parts) > 1
    parts = [p for p in parts if p]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"`--seeds` must be a count such as '3' or a list such as '0,1,2'; got {text!r}") from None
    if not values:
        raise ValueError(f"`--seeds` lists no seed; got {text!r}")
    if not is_list:
        count = values[0]
        if count < 1:
            hint = " (for seed 0 alone write '0,')" if count == 0 else ""
            raise ValueError(f"`--seeds` count must be >= 1{hint}; got {text!r}")
        return list(range(count))
    if any(v < 0 for v in values):
        raise ValueError(f"`--seeds` must be non-negative integers; got {text!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"`--seeds` repeats a seed; got {text!r}")
    return values


def _seeds_type(text):
    try:
        return parse_seeds(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_common_args(parser, presets, default_out, default_preset=None, default_seeds="1"):
    """Add --preset, --data, --out, --seeds and --dry-run to an `argparse.ArgumentParser`; returns it.

    Args:
        parser: the recipe's parser.
        presets: preset names (a dict's keys work); --preset accepts exactly these.
        default_out: default results folder for --out.
        default_preset: default for --preset ("cpu" when it is a preset, else the first one).
        default_seeds: default for --seeds, in `parse_seeds` syntax ("1" = seed 0 only, "3" = 0, 1, 2).

    --data defaults to None, meaning tensorflow-datasets; --seeds is parsed into a list of ints.
    """
    if not isinstance(parser, argparse.ArgumentParser):
        raise ValueError(  # noqa: TRY004 (bad arguments are ValueErrors in this package)
            f"`parser` must be an argparse.ArgumentParser; got {type(parser).__name__}"
        )
    presets = list(presets)
    if not presets or not all(isinstance(p, str) and p for p in presets):
        raise ValueError(f"`presets` must be non-empty preset names; got {presets!r}")
    if default_preset is None:
        default_preset = "cpu" if "cpu" in presets else presets[0]
    if default_preset not in presets:
        raise ValueError(f"`default_preset` must be one of {presets}; got {default_preset!r}")
    parse_seeds(default_seeds)  # validate early
    parser.add_argument(
        "--preset", choices=presets, default=default_preset, help=f"settings preset (default: {default_preset})"
    )
    parser.add_argument(
        "--data", default=None, help=".npz with x_train/y_train/x_test/y_test (default: tensorflow-datasets)"
    )
    parser.add_argument("--out", default=str(default_out), help=f"results folder (default: {default_out})")
    parser.add_argument(
        "--seeds",
        type=_seeds_type,
        default=parse_seeds(default_seeds),
        help=f"a count ('3' = seeds 0,1,2) or a list ('0,4,5'); default: {default_seeds}",
    )
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their estimated cost, run nothing")
    return parser


def print_outputs(paths, stream=None):
    """Print where a recipe's tables and figures went: `paths` a list of paths or a dict label -> path.

    Missing files are marked "(missing)". Returns the list of paths printed.

    >>> _ = print_outputs({"table": "results/none/table.md", "figure": "results/none/gap.png"})
    outputs:
      table   results/none/table.md  (missing)
      figure  results/none/gap.png  (missing)
    """
    stream = sys.stdout if stream is None else stream
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    items = list(paths.items()) if isinstance(paths, dict) else [(None, p) for p in paths]
    width = max([len(str(k)) for k, _ in items if k is not None] or [0])
    print("outputs:", file=stream)
    printed = []
    for label, p in items:
        p = Path(p)
        mark = "" if p.exists() else "  (missing)"
        head = f"{label:<{width}}  " if label is not None else ""
        print(f"  {head}{p}{mark}", file=stream)
        printed.append(p)
    stream.flush()
    return printed
