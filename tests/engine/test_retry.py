"""The retry policy: exponential backoff with jitter, Retry-After honoured up to a bound."""

from __future__ import annotations

import pytest

from engine.errors import ConfigurationError
from engine.retry import RetryPolicy

POLICY = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=8.0, max_retry_after_s=60.0)


def test_delays_double_with_half_of_each_step_random() -> None:
    assert [POLICY.delay_s(n, None, 0.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert [POLICY.delay_s(n, None, 0.999999) for n in (1, 2)] == pytest.approx([1.0, 2.0])


def test_delays_stop_growing_at_the_maximum() -> None:
    policy = RetryPolicy(max_attempts=20, base_delay_s=1.0, max_delay_s=8.0)
    assert policy.delay_s(10, None, 1.0) == pytest.approx(8.0)


def test_there_is_no_retry_after_the_last_attempt() -> None:
    assert POLICY.delay_s(5, None, 0.5) is None


def test_retry_after_is_waited_for_even_when_longer_than_the_backoff() -> None:
    assert POLICY.delay_s(1, 30.0, 0.5) == 30.0
    assert POLICY.delay_s(4, 0.1, 0.0) == 4.0


def test_a_retry_after_beyond_the_bound_ends_the_retries() -> None:
    assert POLICY.delay_s(1, 61.0, 0.5) is None


def test_a_policy_without_attempts_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(max_attempts=0)
