"""Rate limits per API key: a token bucket per key id, 429 with Retry-After from require()."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from api.auth import Authenticator, mint_key
from api.errors import ApiError
from api.rate_limits import RateLimiter, TokenBucket, retry_after_s
from streams import metrics


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_full_bucket_allows_a_burst_then_refuses_with_the_wait() -> None:
    bucket = TokenBucket(rate_per_s=2.0, capacity=3.0, tokens=3.0, updated_s=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)  # one token comes back in 1/2 s


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=10.0, capacity=2.0, tokens=0.0, updated_s=0.0)
    assert bucket.take(0.1) == 0.0  # 1 token after 100 ms
    assert bucket.take(0.1) > 0
    assert bucket.take(60.0) == 0.0 and bucket.take(60.0) == 0.0  # a minute idle: still only 2
    assert bucket.take(60.0) > 0


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert [retry_after_s(w) for w in (0.001, 0.5, 1.0, 1.2, 7.9)] == [1, 1, 1, 2, 8]


def test_each_key_has_its_own_bucket_and_zero_rate_is_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert limiter.take("a", 1.0, 1) == 0.0
    assert limiter.take("a", 1.0, 1) == pytest.approx(1.0)
    assert limiter.take("b", 1.0, 1) == 0.0
    assert all(limiter.take("c", 0.0, 1) == 0.0 for _ in range(1000))
    clock.now_s += 1.0
    assert limiter.take("a", 1.0, 1) == 0.0


def request_with(key: str):
    return make_mocked_request("GET", "/v1/customers/c1", headers={"Authorization": f"Bearer {key}"})


def test_require_answers_429_rate_limited_with_retry_after_once_the_key_spent_its_burst() -> None:
    clock = FakeClock()
    new = mint_key({"customers:read"}, key_id="busy")
    auth = Authenticator([new.setting], rate_per_s=0.25, burst=2, clock=clock)
    before = metrics.RATE_LIMITED.labels("busy")._value.get()
    auth.require(request_with(new.secret), "customers:read")
    auth.require(request_with(new.secret), "customers:read")
    with pytest.raises(ApiError) as error:
        auth.require(request_with(new.secret), "customers:read")
    assert (error.value.status, error.value.code) == (429, "rate_limited")
    assert error.value.headers == {"Retry-After": "4"}  # one token per 4 s
    assert metrics.RATE_LIMITED.labels("busy")._value.get() == before + 1
    clock.now_s += 4.0
    auth.require(request_with(new.secret), "customers:read")


def test_a_key_of_its_own_limit_overrides_the_default() -> None:
    clock = FakeClock()
    slow = mint_key({"events:write"}, key_id="slow", rate_per_s=1.0, burst=1)
    fast = mint_key({"events:write"}, key_id="fast")
    auth = Authenticator([slow.setting, fast.setting], rate_per_s=100.0, burst=50, clock=clock)
    auth.require(request_with(slow.secret), "events:write")
    with pytest.raises(ApiError):
        auth.require(request_with(slow.secret), "events:write")
    for _ in range(50):
        auth.require(request_with(fast.secret), "events:write")


@pytest.mark.parametrize("rate", [-1.0, float("nan"), float("inf")])
def test_a_rate_limit_that_is_not_a_finite_number_of_requests_is_a_configuration_error(rate: float) -> None:
    from engine.errors import ConfigurationError
    from engine.settings import Settings

    with pytest.raises(ConfigurationError, match="rate_limit_per_s must be a number"):
        Settings(rate_limit_per_s=rate)
    with pytest.raises(ConfigurationError, match="rate_per_s must be a number"):
        mint_key({"admin"}, rate_per_s=rate)
