"""The faults the soak arms on the sandbox before a run, drawn at random with these weights."""

from __future__ import annotations

import random
from typing import Callable

from fo_assets.sandbox import Sandbox

Fault = tuple[str, int, Callable[[Sandbox, random.Random], None]]

MENU: tuple[Fault, ...] = (
    ("none", 3, lambda sb, rng: None),
    ("429 storm with Retry-After", 3,
     lambda sb, rng: sb.faults.throttle(n=rng.randint(2, 10), retry_after=rng.randint(1, 2))),
    # Rare: without Retry-After fo-assets waits its 30 s default, as against a real tenant.
    ("429 without Retry-After", 1, lambda sb, rng: sb.faults.throttle(n=1, retry_after=None)),
    ("503s", 2, lambda sb, rng: sb.faults.unavailable(n=rng.randint(1, 4))),
    ("dropped connections", 2, lambda sb, rng: sb.faults.drop_connection(n=rng.randint(1, 4))),
    ("tokens revoked", 2, lambda sb, rng: sb.faults.revoke_tokens()),
    ("concurrency limit 2", 2, lambda sb, rng: (sb.faults.latency(0.02), sb.faults.concurrency_limit(2))),
    ("AOS warm-up 3 s", 1, lambda sb, rng: sb.faults.warmup(3)),
)


def arm_random(sandbox: Sandbox, rng: random.Random) -> str:
    name, _, arm = rng.choices(MENU, weights=[weight for _, weight, _ in MENU])[0]
    arm(sandbox, rng)
    return name
