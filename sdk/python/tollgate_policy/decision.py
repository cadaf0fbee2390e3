"""What a policy answers: allow with a grant, or deny with a reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Tuple

__all__ = ["Grant", "Denial", "Decision"]


@dataclass
class Grant:
    """What an allowed workload receives: ``Grant()`` and the chained ``with_*`` builders.

    The host intersects the grant with the identity's own limits: scopes outside the identity's
    allowed scopes are dropped and the TTL is capped by the identity's maximum.
    """

    #: Scopes granted.
    scopes: List[str] = field(default_factory=list)
    #: A cap on the issued token's lifetime, in seconds.
    ttl_seconds: Optional[int] = None
    #: Extra claims for the issued token, as (name, JSON text) pairs.
    claims: List[Tuple[str, str]] = field(default_factory=list)

    def with_scope(self, scope: str) -> "Grant":
        """Adds one scope."""
        self.scopes.append(str(scope))
        return self

    def with_scopes(self, scopes: Iterable[str]) -> "Grant":
        """Adds several scopes."""
        self.scopes.extend(str(s) for s in scopes)
        return self

    def with_ttl_seconds(self, ttl: int) -> "Grant":
        """Caps the issued token's lifetime, in seconds (an integer in ``0..2**32``)."""
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl < 2**32:
            raise ValueError(f"ttl_seconds must be an integer in 0..2**32, not {ttl!r}")
        self.ttl_seconds = ttl
        return self

    def with_claim(self, name: str, value: Any) -> "Grant":
        """Adds a claim to the issued token; ``value`` is serialized to JSON (``TypeError`` or
        ``ValueError`` for values JSON cannot hold)."""
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        self.claims.append((str(name), text))
        return self

    def claim(self, name: str) -> Any:
        """The value of claim ``name``, parsed from JSON (the last one set wins), or ``None``."""
        found = None
        for key, text in self.claims:
            if key == name:
                found = json.loads(text)
        return found


@dataclass
class Denial:
    """Why a request was denied. The code is short and machine-readable (``namespace``,
    ``pod``, ...); the message is for the tenant's decision log and never shown to the
    workload."""

    #: A short machine-readable reason: 1 to 64 ASCII letters, digits, ``-``, ``_`` or ``.``.
    code: str
    #: A human-readable explanation for the decision log.
    message: str = ""


@dataclass
class Decision:
    """A policy's answer: build it with :meth:`allow` or :meth:`deny`."""

    #: The grant when allowed, else ``None``.
    grant: Optional[Grant] = None
    #: The denial when denied, else ``None``.
    denial: Optional[Denial] = None

    @staticmethod
    def allow(grant: Grant) -> "Decision":
        """Allows with the given grant."""
        return Decision(grant=grant)

    @staticmethod
    def deny(code: str, message: str = "") -> "Decision":
        """Denies with a reason code and a message for the decision log."""
        return Decision(denial=Denial(str(code), str(message)))

    def is_allow(self) -> bool:
        """Whether this is an allow."""
        return self.grant is not None

    def denial_code(self) -> Optional[str]:
        """The denial code, if denied."""
        return self.denial.code if self.denial else None
