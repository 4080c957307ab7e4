"""Bearer tokens: generation, the format a presented token must have, hashing, comparison.

Only the sha256 of a token is stored; the user a presented token names is looked up by that
hash (``fast_read.UserLookup``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# What a presented token must look like before it is looked up at all.
# secrets.token_urlsafe(32) gives 43 characters of [A-Za-z0-9_-]; allow some slack.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]{20,256}$")


def generate_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """sha256 hex of the token: enough for a 256-bit random token (no salt or KDF needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def token_matches(token: str, token_hash: str) -> bool:
    return hmac.compare_digest(hash_token(token), token_hash)


def digests_match(digest: str, token_hash: str) -> bool:
    """Constant-time comparison of two token hashes."""
    return hmac.compare_digest(digest, token_hash)


def secrets_match(presented: str, expected: str) -> bool:
    """Constant-time comparison of a presented secret with the expected one."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
