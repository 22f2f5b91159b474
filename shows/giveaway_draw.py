"""The giveaways' draw method (docs/giveaways.md, "Checking a draw"): pure
functions, so that the service, the verification page and anybody's own code
compute the same winner from what is published.

- The seed is 32 random bytes, kept as 64 lowercase hex digits.
- The commitment, published when the giveaway opens, is the lowercase hex
  SHA-256 of the seed's 32 bytes.
- The list is the entries' tokens (lowercase hex) sorted in byte order.
- Round ``r`` (1 for the first draw, 2, 3… for redraws) draws among the tokens
  not drawn in an earlier round, still in byte order: the winner's index in
  that list is ``int.from_bytes(SHA-256(seed || b"\\n" || str(r) || b"\\n" ||
  "\\n".join(tokens)), "big") mod len(tokens)`` (``||`` joins bytes; ``str(r)``
  and the tokens are ASCII).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

SEED_BYTES = 32
TOKEN_BYTES = 8


def new_seed() -> str:
    """A fresh secret seed, as 64 hex digits."""
    return secrets.token_bytes(SEED_BYTES).hex()


def new_token() -> str:
    """An entry's public token: 16 lowercase hex digits."""
    return secrets.token_hex(TOKEN_BYTES)


def commitment(seed: str) -> str:
    """The published commitment to ``seed``: SHA-256 of its bytes, in hex."""
    return hashlib.sha256(bytes.fromhex(seed)).hexdigest()


def sorted_tokens(tokens: Iterable[str]) -> list[str]:
    """The list as published: tokens in byte order."""
    return sorted(tokens, key=lambda token: token.encode("ascii"))


def winner_index(seed: str, round_number: int, remaining: Sequence[str]) -> int:
    """The index of round ``round_number``'s winner in ``remaining`` (the
    sorted tokens not drawn in an earlier round). ``remaining`` is not empty."""
    if not remaining:
        raise ValueError("nobody left to draw")
    message = (
        bytes.fromhex(seed)
        + b"\n"
        + str(round_number).encode("ascii")
        + b"\n"
        + "\n".join(remaining).encode("ascii")
    )
    digest = hashlib.sha256(message).digest()
    return int.from_bytes(digest, "big") % len(remaining)


def winner_of_round(seed: str, round_number: int, tokens: Iterable[str]) -> str | None:
    """The token that wins round ``round_number`` among all entries'
    ``tokens``, replaying the earlier rounds; None once nobody is left."""
    remaining = sorted_tokens(tokens)
    winner: str | None = None
    for number in range(1, round_number + 1):
        if not remaining:
            return None
        winner = remaining.pop(winner_index(seed, number, remaining))
    return winner
