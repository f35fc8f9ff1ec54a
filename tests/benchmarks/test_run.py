"""Tests for benchmarks/run.py: how the rounds of a timing group are combined."""

import pytest

from benchmarks.run import median_of_rounds


def test_every_timing_is_the_median_of_its_rounds_and_labels_are_kept():
    rounds = [
        [{"case": "c", "dtype": "f64", "fwd": 0.050, "bwd": 0.120}, {"case": "a", "dtype": "f32", "fwd": 0.002, "bwd": 0.004}],
        [{"case": "c", "dtype": "f64", "fwd": 0.070, "bwd": 0.110}, {"case": "a", "dtype": "f32", "fwd": 0.001, "bwd": 0.005}],
        [{"case": "c", "dtype": "f64", "fwd": 0.060, "bwd": 0.200}, {"case": "a", "dtype": "f32", "fwd": 0.003, "bwd": 0.003}],
    ]
    merged = median_of_rounds(rounds)
    assert merged == [{"case": "c", "dtype": "f64", "fwd": 0.060, "bwd": 0.120},
                      {"case": "a", "dtype": "f32", "fwd": 0.002, "bwd": 0.004}]


def test_failed_rounds_are_left_out_and_an_all_failed_group_keeps_its_error():
    ok = [{"case": "b", "dtype": "f64", "fwd": 0.010, "bwd": 0.030}]
    assert median_of_rounds([{"error": "killed"}, ok]) == ok
    assert median_of_rounds([{"error": "first"}, {"error": "second"}]) == {"error": "first"}


def test_an_even_number_of_rounds_averages_the_middle_two():
    rounds = [[{"case": "c", "fwd": t}] for t in (0.010, 0.040, 0.020, 0.030)]
    assert median_of_rounds(rounds)[0]["fwd"] == pytest.approx(0.025)
