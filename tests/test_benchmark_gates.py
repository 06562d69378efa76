"""The benchmarks' SAM-type gate follows the measured parts of the plain step (pure numpy, no backend)."""

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "benchmarks_common", Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py"
)
C = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(C)


def _stat(median):
    return C.summarize([median * 0.99, median, median * 1.01])


def test_gate_follows_the_forward_backward_share():
    assert C.sam_floor(1.0) == pytest.approx(1.9) == pytest.approx(C.SAM_FLOOR)  # no augmentation: two passes
    assert C.sam_floor(0.5) == pytest.approx(1.45)
    # 1.55x with augmentation half of the plain step: expected about 1.5x, so trusted; without: flagged.
    assert C.trust_problems(_stat(1.55), sam_ratio=1.55, floor=C.sam_floor(0.5)) == []
    assert "below the 1.90x gate" in C.trust_problems(_stat(1.55), sam_ratio=1.55)[0]
    assert "below the 1.45x gate" in C.trust_problems(_stat(1.3), sam_ratio=1.3, floor=C.sam_floor(0.5))[0]


def test_forward_backward_share_from_interleaved_rounds():
    # per-round views / augmented plain step, median; clipped to [0, 1] (noise can make views slower)
    assert C.fb_share([0.5, 0.6, 0.4], [1.0, 1.0, 1.0]) == pytest.approx(0.5)
    assert C.fb_share([1.2, 1.3, 1.1], [1.0, 1.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="share"):
        C.sam_floor(1.5)
    with pytest.raises(ValueError, match="empty"):
        C.fb_share([], [])
