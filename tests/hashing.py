"""A cheap argon2id hasher for test platforms: same algorithm and format, ~1 ms instead of ~50 ms.

Console passwords and PINs are hashed with the library's recommended costs in
production (``Options.secret_hasher`` left unset); tests that create many users
pass this one so the suite spends its time on behaviour, not on key stretching.
"""

from __future__ import annotations

from argon2 import PasswordHasher

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
