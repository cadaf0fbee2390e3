"""The request a policy receives: a verified token and the exchange around it.

These mirror the WIT records of `tollgate:policy/types` (Contract 1). Inside the component the
SDK converts the generated bindings into them; in unit tests you build them directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, List, Optional

__all__ = ["ObjectRef", "KubernetesClaims", "Token", "Exchange", "Request"]

_ABSENT = object()


@dataclass
class ObjectRef:
    """A Kubernetes object named in a projected token: its name and its unique id."""

    #: The object's name, for example ``deployer``.
    name: str = ""
    #: The object's UID. Unlike the name, it changes when the object is deleted and recreated.
    uid: str = ""


@dataclass
class KubernetesClaims:
    """The ``kubernetes.io`` claim of a projected ServiceAccount token."""

    #: The namespace of the ServiceAccount (and of the pod, if bound to one).
    namespace: str = ""
    #: The ServiceAccount the token was minted for.
    service_account: ObjectRef = field(default_factory=ObjectRef)
    #: The pod the token is bound to, if any.
    pod: Optional[ObjectRef] = None
    #: The node the token is bound to, if any (Kubernetes 1.30+).
    node: Optional[ObjectRef] = None
    #: The Secret the token is bound to, if any.
    secret: Optional[ObjectRef] = None


@dataclass
class Token:
    """The verified subject token: the host has checked its signature, issuer, lifetime and
    audience."""

    #: The ``iss`` claim, exactly as registered for the identity's issuer.
    issuer: str = ""
    #: The ``sub`` claim, for example ``system:serviceaccount:prod:deployer``.
    subject: str = ""
    #: The ``aud`` claim, as a list even when the token carried a single string.
    audiences: List[str] = field(default_factory=list)
    #: The ``iat`` claim, in seconds since the Unix epoch.
    issued_at: Optional[int] = None
    #: The ``nbf`` claim, in seconds since the Unix epoch.
    not_before: Optional[int] = None
    #: The ``exp`` claim, in seconds since the Unix epoch.
    expires_at: int = 0
    #: The ``jti`` claim.
    jwt_id: Optional[str] = None
    #: The typed ``kubernetes.io`` claim, if the token is a Kubernetes token.
    kubernetes: Optional[KubernetesClaims] = None
    #: The whole verified payload as JSON, for claims without a typed field.
    claims_json: str = "{}"

    def claims(self) -> Any:
        """Parses :attr:`claims_json` (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.claims_json or "{}")

    def claim(self, pointer: str) -> Any:
        """The claim at a JSON pointer (RFC 6901) such as ``/kubernetes.io/pod/name``, or
        ``None`` when absent. ``""`` is the whole payload."""
        try:
            value: Any = self.claims()
        except ValueError:
            return None
        if pointer == "":
            return value
        if not pointer.startswith("/"):
            return None
        for token in pointer[1:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(value, dict):
                value = value.get(token, _ABSENT)
            elif isinstance(value, list):
                if not token.isdigit() or (token != "0" and token.startswith("0")):
                    return None
                index = int(token)
                value = value[index] if index < len(value) else _ABSENT
            else:
                return None
            if value is _ABSENT:
                return None
        return value

    def namespace(self) -> Optional[str]:
        """The namespace of a Kubernetes token."""
        return self.kubernetes.namespace if self.kubernetes else None

    def pod_name(self) -> Optional[str]:
        """The pod name of a pod-bound Kubernetes token."""
        pod = self.kubernetes.pod if self.kubernetes else None
        return pod.name if pod else None

    def node_name(self) -> Optional[str]:
        """The node name of a node-bound Kubernetes token."""
        node = self.kubernetes.node if self.kubernetes else None
        return node.name if node else None


@dataclass
class Exchange:
    """What the workload asked for, and when."""

    #: The tenant that owns the identity.
    tenant: str = ""
    #: The identity being assumed.
    identity: str = ""
    #: Audiences the workload asked the issued token to carry.
    requested_audiences: List[str] = field(default_factory=list)
    #: Scopes the workload asked for (empty: whatever the policy grants).
    requested_scopes: List[str] = field(default_factory=list)
    #: The caller's network address, when the host knows it.
    client_address: Optional[str] = None
    #: The current time, in seconds since the Unix epoch. Use this instead of a clock.
    now: int = 0


@dataclass
class Request:
    """Everything a policy decides on."""

    #: The verified subject token.
    token: Token = field(default_factory=Token)
    #: The exchange the workload asked for.
    exchange: Exchange = field(default_factory=Exchange)
    #: The identity's policy config, as JSON (:class:`~tollgate_policy.Policy` parses it).
    config: str = "{}"

    def token_age(self) -> Optional[int]:
        """Seconds since the token was issued, if it carries ``iat``."""
        iat = self.token.issued_at
        return None if iat is None else self.exchange.now - iat
