"""When to try a failed send again: exponential backoff with jitter, honouring Retry-After.

Pure: the attempt number, the provider's Retry-After and a random number in [0, 1) are
arguments, so the policy is tested without clocks or randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import ConfigurationError


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    """``max_attempts`` counts the first try; waits grow from ``base_delay_s`` to ``max_delay_s``.

    A provider's Retry-After is waited for as asked (never less), but one longer than
    ``max_retry_after_s`` ends the retries: waiting that long would hold the delivery too long.
    """

    max_attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("delivery max_attempts must be at least 1")
        if self.base_delay_s < 0 or self.max_delay_s < self.base_delay_s:
            raise ConfigurationError("delivery retry delays must satisfy 0 <= base_delay_s <= max_delay_s")

    def delay_s(self, attempt: int, retry_after_s: float | None, random: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1`` after attempt ``attempt`` failed.

        ``None``: do not retry (the last attempt failed, or the provider asked for too long a wait).
        The backoff is "equal jitter": half of the exponential step is fixed, half is random, so
        retries of many deliveries that failed together spread out but never come back at once.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after_s is not None and retry_after_s > self.max_retry_after_s:
            return None
        step: float = min(self.max_delay_s, self.base_delay_s * 2.0 ** (attempt - 1))
        backoff = step / 2 + step / 2 * random
        return max(backoff, retry_after_s) if retry_after_s is not None else backoff
