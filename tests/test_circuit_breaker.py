"""The circuit breaker: opens, fails fast, half-opens, closes; one state for every process (issue: sources)."""

import subprocess
import sys

import pytest

from flightdeck.circuit_breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError
from tests.conftest import ROOT


class Clock:
    def __init__(self):
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_then_half_opens_and_closes(tmp_path):
    clock = Clock()
    breaker = CircuitBreaker(
        tmp_path / "b.sqlite", "api", failure_threshold=3, cooldown_seconds=60, clock=clock
    )
    for i in range(2):
        breaker.before_call()
        _, opened = breaker.record_failure(f"boom {i}")
        assert not opened
    breaker.record_success()  # a success resets the count: failures must be consecutive
    for i in range(3):
        breaker.before_call()
        state, opened = breaker.record_failure(f"boom {i}")
    assert opened and state.state == OPEN and state.last_error == "boom 2"

    clock.now += 59
    with pytest.raises(CircuitOpenError, match="open after 3 consecutive failures"):
        breaker.before_call()

    clock.now += 2  # cool-down over: one trial call goes through, a second caller is still rejected
    breaker.before_call()
    assert breaker.state().state == HALF_OPEN
    with pytest.raises(CircuitOpenError, match="half-open"):
        breaker.before_call()
    breaker.record_success()
    assert breaker.state().state == CLOSED and breaker.state().consecutive_failures == 0
    breaker.before_call()


def test_a_failed_trial_reopens_for_another_cool_down(tmp_path):
    clock = Clock()
    breaker = CircuitBreaker(
        tmp_path / "b.sqlite", "api", failure_threshold=1, cooldown_seconds=10, clock=clock
    )
    breaker.record_failure("down")
    clock.now += 11
    breaker.before_call()
    state, opened = breaker.record_failure("still down")
    assert opened and state.state == OPEN and state.opened_at == clock.now
    clock.now += 5
    with pytest.raises(CircuitOpenError):
        breaker.before_call()


def _in_other_process(path, code: str) -> str:
    script = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
        "from flightdeck.circuit_breaker import CircuitBreaker, CircuitOpenError\n"
        f"b = CircuitBreaker({str(path)!r}, 'api', failure_threshold=2, cooldown_seconds=60, clock=lambda: 1000.0)\n"
    ) + code
    return subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout


def test_state_is_shared_between_processes_and_survives_restarts(tmp_path):
    path = tmp_path / "b.sqlite"
    # Another process (another run) fails twice: the circuit opens for everyone.
    _in_other_process(path, "b.record_failure('refused'); b.record_failure('refused')")
    here = CircuitBreaker(path, "api", failure_threshold=2, cooldown_seconds=60, clock=lambda: 1030.0)
    assert here.state().state == OPEN
    with pytest.raises(CircuitOpenError):
        here.before_call()
    # A fresh process (a restarted daemon) still sees it open, and fails fast too.
    out = _in_other_process(
        path,
        "try:\n    b.before_call(); print('called')\nexcept CircuitOpenError as e:\n    print('rejected')",
    )
    assert out.strip() == "rejected"
    # After the cool-down this process's trial succeeds; the other process sees it closed.
    later = CircuitBreaker(path, "api", failure_threshold=2, cooldown_seconds=60, clock=lambda: 1061.0)
    later.before_call()
    later.record_success()
    assert _in_other_process(path, "print(b.state().state)").strip() == CLOSED
