"""The choice `flask auth calibrate-hash` makes from measured timings (no hashing here)."""

from __future__ import annotations

from auth_microservice_app.hash_calibration import (
    Argon2Params,
    Calibration,
    Measurement,
    calibrate,
    candidate_grid,
    report,
    samples_for,
    select_strongest,
    worth_measuring,
)


def timing(t: int, m: int, ms: float) -> Measurement:
    return Measurement(Argon2Params(time_cost=t, memory_cost=m), median_ms=ms, samples=5)


MEASURED = [
    timing(1, 19456, 11.0),
    timing(2, 19456, 21.0),
    timing(3, 19456, 31.0),
    timing(4, 19456, 41.0),
    timing(1, 65536, 38.0),
    timing(2, 65536, 74.0),
    timing(1, 131072, 80.0),
]


def test_picks_the_strongest_setting_within_the_budget():
    chosen = select_strongest(MEASURED, target_ms=50)
    # 19456 x 4 = 77824 KiB-passes beats 65536 x 1 = 65536, and both fit in 50 ms
    assert chosen is not None
    assert chosen.params == Argon2Params(time_cost=4, memory_cost=19456)


def test_a_tighter_budget_picks_a_weaker_setting():
    chosen = select_strongest(MEASURED, target_ms=25)
    assert chosen is not None
    assert chosen.params == Argon2Params(time_cost=2, memory_cost=19456)


def test_the_budget_is_inclusive():
    chosen = select_strongest(MEASURED, target_ms=74)
    assert chosen is not None
    assert chosen.params == Argon2Params(time_cost=2, memory_cost=65536)


def test_between_equal_strengths_more_memory_wins():
    equal = [timing(2, 32768, 30.0), timing(1, 65536, 30.0)]
    chosen = select_strongest(equal, target_ms=50)
    assert chosen is not None
    assert chosen.params.memory_cost == 65536


def test_settings_meeting_owasp_beat_stronger_ones_that_do_not():
    # not a real grid point, but the rule: OWASP's minimum first, strength second
    odd = [timing(1, 40000, 20.0), timing(2, 19456, 30.0)]
    chosen = select_strongest(odd, target_ms=50)
    assert chosen is not None
    assert chosen.params == Argon2Params(time_cost=2, memory_cost=19456)


def test_none_fits_says_so():
    slow = [timing(1, 19456, 120.0), timing(2, 19456, 240.0)]
    assert select_strongest(slow, target_ms=50) is None
    result = Calibration(target_ms=50, measurements=slow, chosen=None)
    text = report(result)
    assert "No setting of the grid verifies within 50 ms" in text
    assert "ARGON2_TIME_COST" not in text


def test_report_gives_the_env_lines_and_logins_per_core():
    chosen = select_strongest(MEASURED, target_ms=50)
    text = report(
        Calibration(target_ms=50, measurements=MEASURED, chosen=chosen), concurrent_hashes=20
    )
    assert "ARGON2_TIME_COST=4" in text
    assert "ARGON2_MEMORY_COST=19456" in text
    assert "ARGON2_PARALLELISM=1" in text
    assert "about 24 logins/s per core" in text  # 1000 / 41 ms
    assert "hold up to 380 MiB" in text  # 19 MiB x 20 logins at once


def test_report_warns_below_the_owasp_minimum():
    weak = [timing(1, 19456, 40.0)]
    text = report(Calibration(target_ms=50, measurements=weak, chosen=weak[0]))
    assert "below OWASP's minimum" in text


def test_owasp_minimums():
    assert Argon2Params(time_cost=2, memory_cost=19456).meets_owasp_minimum()
    assert Argon2Params(time_cost=1, memory_cost=47104).meets_owasp_minimum()
    assert not Argon2Params(time_cost=1, memory_cost=32768).meets_owasp_minimum()


def test_the_grid_covers_the_issue_range_cheapest_first():
    grid = candidate_grid()
    assert grid[0] == Argon2Params(time_cost=1, memory_cost=19456)
    assert grid[-1] == Argon2Params(time_cost=4, memory_cost=262144)
    assert {p.parallelism for p in grid} == {1}
    assert len(grid) == 24


def test_costlier_points_than_a_miss_are_not_measured():
    missed = [timing(2, 65536, 74.0)]
    assert not worth_measuring(Argon2Params(time_cost=3, memory_cost=65536), missed, 50)
    assert not worth_measuring(Argon2Params(time_cost=2, memory_cost=131072), missed, 50)
    # fewer passes with the same memory may still fit
    assert worth_measuring(Argon2Params(time_cost=1, memory_cost=65536), missed, 50)


def test_far_over_budget_predictions_are_skipped():
    measured = [timing(1, 19456, 10.0)]
    # 262144 x 4 is ~54 times the work: ~540 ms predicted, over 3 x 50 ms
    assert not worth_measuring(Argon2Params(time_cost=4, memory_cost=262144), measured, 50)


def test_samples_are_bounded():
    assert samples_for(None) == 5
    assert samples_for(1000.0) == 5
    assert samples_for(10.0) == 15


def test_report_notes_a_shared_cpu():
    busy = [Measurement(Argon2Params(2, 19456), median_ms=20.0, samples=5, wall_ms=45.0)]
    text = report(Calibration(target_ms=50, measurements=busy, chosen=busy[0]))
    assert "other processes shared the CPU" in text


def test_calibrate_walks_the_grid_with_a_fake_machine():
    def fake_measure(params: Argon2Params, samples: int) -> Measurement:
        # 1 ms per 2,000 KiB-passes, like a fast core
        return Measurement(params, params.strength / 2000, samples)

    clock = iter(float(i) for i in range(1000))
    result = calibrate(50, measure_fn=fake_measure, clock=lambda: next(clock))
    assert result.chosen is not None
    assert result.chosen.median_ms <= 50
    # 32768 x 3 = 98304 KiB-passes = 49.2 ms is the strongest point under 50 ms on this grid
    assert result.chosen.params == Argon2Params(time_cost=3, memory_cost=32768)
    assert result.skipped  # the 256 MiB row is never measured
    assert all(m.median_ms <= 3 * 50 for m in result.measurements)


def test_calibrate_stops_at_the_budget():
    def fake_measure(params: Argon2Params, samples: int) -> Measurement:
        return Measurement(params, 5.0, samples)

    clock = iter([0.0, 0.0, 0.5, 1.0, 30.0, 31.0] + [40.0] * 100)
    result = calibrate(50, budget_seconds=25, measure_fn=fake_measure, clock=lambda: next(clock))
    assert result.out_of_time
    assert len(result.measurements) == 3
    assert "time budget ran out" in report(result)
