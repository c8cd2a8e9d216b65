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
