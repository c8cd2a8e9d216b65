"""The sweep's step counter: steps passed over after a failure count, never past what this run planned."""

from collections import Counter

from edgesplit.bench.clock import StepClock


def test_steps_passed_over_count_only_what_this_run_planned():
    clock = StepClock(Counter(export=2, profile=4, emit=2, audit=4), [], "sha")
    clock.reached("export", 1.0)
    clock.passed_over(Counter(profile=2, emit=1, audit=2))  # the first export's unit after a failed profile
    assert clock.position() == "step 6 of 12" and clock.left == Counter(export=1, profile=2, emit=1, audit=2)
    # a process of a shared sweep that audits 2 of the units: an upstream failure names the unit's every step
    audits = StepClock(Counter(audit=2), [], "sha")
    audits.passed_over(Counter(export=1, profile=2, emit=1, audit=3))
    assert audits.position() == "step 2 of 2" and audits.left["audit"] == 0 and audits.left["export"] == 0
    audits.passed_over(Counter(audit=1))
    assert audits.position() == "step 2 of 2", "never past the total"


def test_units_passed_over_count_for_the_process_whose_share_they_were():
    from edgesplit.bench.sweep import _Sweep

    sweep = _Sweep.__new__(_Sweep)  # the numbering and the counting alone, no spec or store
    sweep.stage, sweep.share, sweep.units = "audit", (1, 2), 3
    sweep.clock = StepClock(Counter(audit=6), [], "sha")
    sweep._pass_over_units(3, Counter(export=3, audit=2))  # units 3, 4, 5: 3 and 5 are process 1's
    assert sweep.units == 6, "numbered as if reached: every process keeps the same numbering"
    assert sweep.clock.position() == "step 4 of 6" and sweep.clock.left["audit"] == 2
    one = _Sweep.__new__(_Sweep)
    one.stage, one.share, one.units = "all", (0, 1), 0
    one.clock = StepClock(Counter(export=9, audit=6), [], "sha")
    one._pass_over_units(3, Counter(export=3, audit=2))
    assert one.clock.position() == "step 15 of 15"
