"""How often a worker's threads take turns at the interpreter lock.

A worker runs Python in two threads that both matter to latency: the main thread (the event loop
with the API, the processor and the dispatcher) and faust's consumer thread (aiokafka's event
loop: fetching, parsing fetch responses, handing records over). Each time the main thread
releases the lock, in a ``send`` of an answer or a wait for the next event, the consumer thread
may take it and keep it until it blocks or until the switch interval forces it to give it back:
CPython's default is 5 ms, so a request that became ready meanwhile waits up to 5 ms more.

Measured with ``refract bench decisions``'s worker at 1,000 req/s, in the first 10 s after it
folded 100,000 customers (when the consumer thread is busiest), alternating the two settings:
p99 of the answers 4.9, 5.0, 6.0, 10.0, 10.4, 13.5 and 68.1 ms with 5 ms (median 10.0); 6.1,
6.3, 6.8, 7.7 and 8.0 ms with 1 ms (median 6.8). The shared machine makes the difference
uncertain, but the long tails were all with 5 ms. The fold's speed did not change (``refract bench
segments``, 150,000 events, two runs each: 4,581 and 5,077 events/s with 1 ms, 4,542 and 5,180
with 5 ms): a forced switch costs microseconds, and there are at most a thousand a second.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.001


def switch_often() -> None:
    """Make a thread holding the interpreter lock give it up after 1 ms when another waits."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
