"""The garbage collector's settings for a serving process (`receivables serve`).

CPython's cyclic collector stops the event loop while it runs, and every request the
worker holds waits for it. Under the bid benchmark a worker with its default settings
ran a full collection every few seconds over ~190,000 tracked objects, most of them
the imported code and the app built at start-up that never die: pauses up to 158 ms,
which set the bid p99 (docs/performance.md, "The garbage collector"). Two documented
levers of the `gc` module remove most of that:

- `gc.freeze()` once the app is built moves every object alive then into a permanent
  generation the collector never scans again;
- a young-generation threshold of 10,000 allocations instead of 700 collects a
  request's short-lived garbage in fewer, larger passes: a tenth of the collections,
  and the older generations, counted in young passes, are reached a tenth as often.

Only the serving process does this: tests build hundreds of apps in one process, and
freezing each would keep its cycles forever.
"""

from __future__ import annotations

import gc

YOUNG_GENERATION_THRESHOLD = 10_000
"""Allocations minus deallocations of tracked objects between two young collections
(CPython's default: 700)."""


def tune_garbage_collector() -> None:
    """Call once the app is built, before the first request."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)
