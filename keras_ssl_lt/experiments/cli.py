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
import math
import os
import sys
from pathlib import Path

from keras_ssl_lt.experiments.records import SetupError

__all__ = [
    "add_common_args",
    "choice_list",
    "existing_file",
    "existing_folder",
    "fraction_list",
    "parse_seeds",
    "positive_float_list",
    "positive_int",
    "print_outputs",
    "run_cli",
]


# argparse `type=` wrappers: the same rules as `_checks` (name, allowed values), raised as argparse errors.
def positive_int(text):
    """An argparse `type=` for counts such as --epochs: an integer >= 1, else an error naming the value.

    >>> positive_int("3")
    3
    >>> positive_int("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be an integer >= 1; got '0'
    """
    try:
        value = int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1; got {text!r}")
    return value


def existing_file(text):
    """An argparse `type=` for --data / --ood-data: the path of an existing file (not a folder).

    >>> existing_file("/")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a file (a .npz with x_train/y_train/x_test/y_test); '/' is a folder
    """
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"must be a file (a .npz with x_train/y_train/x_test/y_test); {text!r} is a folder"
        )
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"file not found: {text!r}")
    return text


def existing_folder(text):
    """An argparse `type=` for a folder argument (e.g. an ImageNet root): an existing folder."""
    if not os.path.isdir(text):
        what = "is a file, not a folder" if os.path.exists(text) else "not found"
        raise argparse.ArgumentTypeError(f"must be an existing folder; {text!r} {what}")
    return text


def choice_list(choices):
    """An argparse `type=` for a comma list whose every item is one of `choices` (e.g. --methods).

    >>> choice_list(("simclr", "supervised"))("supervised,simclr")
    ['supervised', 'simclr']
    >>> choice_list(("simclr", "supervised"))("bogus")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: unknown 'bogus'; allowed: simclr, supervised
    """
    choices = tuple(choices)

    def parse(text):
        items = [t.strip() for t in str(text).split(",") if t.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"must be a comma list of {', '.join(choices)}; got {text!r}")
        bad = [t for t in items if t not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(map(repr, bad))}; allowed: {', '.join(choices)}")
        if len(set(items)) != len(items):
            raise argparse.ArgumentTypeError(f"repeats an item; got {text!r}")
        return items

    return parse


def _number_list(text, what, ok):
    """`(items, floats)` of a comma list whose every value passes `ok`, else an argparse error naming `what`."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"must be a comma list of {what}; got {text!r}")
    values = []
    for t in items:
        try:
            v = float(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a comma list of {what}; {t!r} is not a number") from None
        if not ok(v):
            raise argparse.ArgumentTypeError(f"must be a comma list of {what}; got {t!r}")
        values.append(v)
    return items, values


def positive_float_list(text):
    """An argparse `type=` for a comma list of finite positive numbers (radii, rates), in the given order.

    >>> positive_float_list("0.05, 2,7")
    [0.05, 2.0, 7.0]
    >>> positive_float_list("1,-2")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a comma list of finite positive numbers; got '-2'
    """
    items, values = _number_list(text, "finite positive numbers", lambda v: math.isfinite(v) and v > 0)
    for i, (t, v) in enumerate(zip(items, values, strict=True)):
        if v in values[:i]:
            raise argparse.ArgumentTypeError(f"must not repeat a value; {t!r} appears twice")
    return values


def fraction_list(include_one=True):
    """An argparse `type=` for a comma list of numbers in (0, 1] (or (0, 1) with `include_one=False`).

    >>> fraction_list(include_one=False)("0.1, 0.01")
    [0.1, 0.01]
    >>> fraction_list()("abc")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a comma list of numbers in (0, 1]; 'abc' is not a number
    """
    interval = "(0, 1]" if include_one else "(0, 1)"

    def parse(text):
        _, values = _number_list(text, f"numbers in {interval}", lambda v: 0.0 < v < 1.0 or (include_one and v == 1.0))
        if len(set(values)) != len(values):
            raise argparse.ArgumentTypeError(f"repeats a value; got {text!r}")
        return values

    return parse


def run_cli(main, argv=None):
    """Run a recipe's `main(argv)`; a `SetupError` (its output folder, records or data) ends it with one line.

    The line goes to stderr as `error: ...` and the exit status is 2, as for a bad flag; other exceptions
    keep their traceback.
    """
    try:
        return main(argv)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


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


def _out_folder(text):
    if not str(text).strip():
        raise argparse.ArgumentTypeError("must be a folder path; got ''")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"must be a folder; {text!r} is a file")
    return text


def add_common_args(parser, presets, default_out, default_preset=None, default_seeds="1", data="file"):
    """Add --preset, --data, --out, --seeds and --dry-run to an `argparse.ArgumentParser`; returns it.

    Args:
        parser: the recipe's parser.
        presets: preset names (a dict's keys work); --preset accepts exactly these.
        default_out: default results folder for --out.
        default_preset: default for --preset ("cpu" when it is a preset, else the first one).
        default_seeds: default for --seeds, in `parse_seeds` syntax ("1" = seed 0 only, "3" = 0, 1, 2).
        data: what --data names, "file" (a .npz) or "folder" (e.g. an ImageNet root); checked when parsed.

    --data defaults to None, meaning tensorflow-datasets; --seeds is parsed into a list of ints; --out must
    not name an existing file.
    """
    if not isinstance(parser, argparse.ArgumentParser):
        raise ValueError(f"`parser` must be an argparse.ArgumentParser; got {type(parser).__name__}")
    presets = list(presets)
    if not presets or not all(isinstance(p, str) and p for p in presets):
        raise ValueError(f"`presets` must be non-empty preset names; got {presets!r}")
    if default_preset is None:
        default_preset = "cpu" if "cpu" in presets else presets[0]
    if default_preset not in presets:
        raise ValueError(f"`default_preset` must be one of {presets}; got {default_preset!r}")
    if data not in ("file", "folder"):
        raise ValueError(f"`data` must be 'file' or 'folder'; got {data!r}")
    parse_seeds(default_seeds)  # validate early
    parser.add_argument(
        "--preset", choices=presets, default=default_preset, help=f"settings preset (default: {default_preset})"
    )
    if data == "file":
        parser.add_argument(
            "--data",
            type=existing_file,
            default=None,
            help=".npz with x_train/y_train/x_test/y_test (default: tensorflow-datasets)",
        )
    else:
        parser.add_argument("--data", type=existing_folder, default=None, help="the data's root folder")
    parser.add_argument(
        "--out", type=_out_folder, default=str(default_out), help=f"results folder (default: {default_out})"
    )
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
