"""Fusion of per-row scores: modality weights inside a part, part weights across parts."""

from __future__ import annotations

import pytest

from pipeline.search.fusion import PartScores, fuse

A = ("a", 0.0, 6.0)
B = ("b", 0.0, 6.0)


def part(weight: float, rows: dict[tuple[tuple[str, float, float], str], float]) -> PartScores:
    scores = PartScores(weight)
    for (key, option), score in rows.items():
        scores.add(key, option, score)
    return scores


def test_modality_weights_decide_which_option_counts() -> None:
    rows = {(A, "visual"): 0.9, (A, "audio"): 0.1, (B, "visual"): 0.2, (B, "audio"): 0.8}
    assert fuse([part(1, rows)], {"visual": 1.0})[A] == pytest.approx(0.9)
    audio_heavy = fuse([part(1, rows)], {"visual": 0.2, "audio": 0.8})
    assert audio_heavy[B] > audio_heavy[A]
    assert audio_heavy[B] == pytest.approx(0.2 * 0.2 + 0.8 * 0.8)


def test_part_weights_average_parts_and_missing_rows_take_the_parts_lowest_score() -> None:
    text = part(1, {(A, "visual"): 0.9, (B, "visual"): 0.3})
    clip = part(3, {(B, "visual"): 0.8, (("c", 0, 6), "visual"): 0.5})
    fused = fuse([text, clip], {"visual": 1.0})
    assert fused[B] == pytest.approx((0.3 + 3 * 0.8) / 4)
    assert fused[A] == pytest.approx((0.9 + 3 * 0.5) / 4), "A missing from clip: clip's floor 0.5"


def test_a_modality_without_rows_is_left_out() -> None:
    fused = fuse([part(1, {(A, "visual"): 0.6})], {"visual": 1.0, "transcription": 1.0})
    assert fused[A] == pytest.approx(0.6)
