"""Run the next chunk of the GPU campaign (issue 21) within one leased command, records to --out.

    KERAS_BACKEND=jax python3 scripts/gpu_campaign.py .gpu/campaign_slice.npz --out "$OUT/campaign" --budget 570

Reads the records already committed (`--records`, default docs/records/gpu_campaign), picks the next unfinished
runs of the claim-3 grid (`keras_ssl_lt.experiments.campaign.CLAIM3_GRID`, in priority order) whose estimated
time (from those records' own timings, else the measured priors) fits `--budget` seconds, runs each with the
`paper` preset (SimSiam, ResNet-18, mixed_bfloat16, the paper's coupled weight decay, 800 or 1600 epochs), and
writes one small JSON record per finished run to --out. Commit them to docs/records/gpu_campaign.

The results page's claim-3 table: `python scripts/gpu_campaign.py --report`.

Rehearse on a CPU with a tiny setting (seconds):

    KERAS_BACKEND=jax python scripts/gpu_campaign.py SLICE --out /tmp/rehearsal --preset smoke --epochs 1 --budget 60
"""

import argparse
import os
import sys
import time


def main(argv=None):
    t0 = time.time()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("slice", nargs="?", help="the slice of scripts/make_campaign_slice.py")
    p.add_argument("--out", help="folder for the new records (required unless --report)")
    p.add_argument("--records", default="docs/records/gpu_campaign", help="records already done (read only)")
    p.add_argument("--budget", type=float, default=570.0, help="seconds this chunk may use (runs must fit)")
    p.add_argument("--preset", default="paper", choices=("paper", "gpu", "smoke", "cpu"))
    p.add_argument("--epochs", type=int, default=None, help="override every entry's epochs (rehearsals only)")
    p.add_argument("--only", default=None, help="comma list of grid entry names to consider (default: all)")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--report", action="store_true", help="print the claim-3 table of --records and stop")
    a = p.parse_args(argv)
    if a.report:
        from keras_ssl_lt.experiments.campaign import report
        from keras_ssl_lt.experiments.records import read_records

        print(report(read_records(a.records)))
        return
    if a.slice is None or a.out is None:
        sys.exit("give the slice's path (scripts/make_campaign_slice.py builds it) and --out")
    if not os.path.isfile(a.slice):
        sys.exit(f"slice: no file at {a.slice!r}; build it with scripts/make_campaign_slice.py")
    if a.budget <= 0:
        sys.exit(f"--budget must be positive; got {a.budget}")
    if a.epochs is not None and a.epochs < 1:
        sys.exit(f"--epochs must be >= 1; got {a.epochs}")
    import keras

    from keras_ssl_lt.experiments import campaign
    from keras_ssl_lt.experiments.presets import get_preset
    from keras_ssl_lt.experiments.records import environment
    from keras_ssl_lt.training.runtime import configure_runtime

    configure_runtime()
    grid = [dict(e) for e in campaign.CLAIM3_GRID]
    if a.only:
        names = a.only.split(",")
        unknown = sorted(set(names) - {e["name"] for e in grid})
        if unknown:
            sys.exit(f"--only: unknown entries {unknown}; known: {[e['name'] for e in grid]}")
        grid = [e for e in grid if e["name"] in names]
    if a.epochs is not None:
        for e in grid:
            e["epochs"] = a.epochs
    slice_ = campaign.load_slice(a.slice)
    grid = [e for e in grid if e.get("profile", "exp") in slice_.manifest["profiles"]]
    cfg = get_preset(a.preset)
    # No RankMe in the logs: its float64 eigendecomposition of the 2048-d head's Gram on the host at every epoch's
    # end (about 6 s on a 2-core CPU) would cost more than the epochs of an 800-epoch run.
    cfg["rankme"] = False
    specs = campaign.grid_specs(grid, preset=a.preset)
    print(
        f"backend {keras.backend.backend()}, {environment().get('accelerators')}, slice {slice_.sha256[:12]}, "
        f"data {slice_.data.describe()}, preset {a.preset} ({cfg.get('precision', 'float32')})",
        flush=True,
    )
    left = a.budget - (time.time() - t0)
    new = campaign.run_chunk(slice_, specs, cfg, a.records, a.out, left, verbose=a.verbose)
    print(f"campaign chunk: {len(new)} run(s) finished; {time.time() - t0:.0f} s in all", flush=True)


if __name__ == "__main__":
    main()
