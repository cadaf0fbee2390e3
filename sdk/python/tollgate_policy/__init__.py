"""Writing Tollgate trust policies in Python.

A trust policy decides which verified workloads may assume an identity, and with what grant.
Tollgate runs it as a sandboxed WebAssembly component (world ``tollgate:policy/trust-policy``),
built from Python with componentize-py. The host has already authenticated the subject token
(signature, issuer, lifetime, audience): a policy only *authorizes*.

.. code-block:: python

    from dataclasses import dataclass
    from typing import List
    from tollgate_policy import ConfigError, Decision, Grant, Policy, export, glob, glob_match

    @dataclass
    class Config:
        namespace: str      # a glob such as "team-a-*"
        scopes: List[str]

    class OneNamespace(Policy[Config]):
        Config = Config

        def validate_config(self, config):
            try:
                glob.validate(config.namespace)
            except glob.GlobError as e:
                raise ConfigError(str(e))

        def evaluate(self, config, request):
            ns = request.token.namespace()
            if ns is not None and glob_match(config.namespace, ns):
                return Decision.allow(Grant().with_scopes(config.scopes))
            return Decision.deny("namespace", "namespace is not allowed")

    # in the app module componentize-py builds:
    WitWorld = export(OneNamespace)

The same code runs on a plain Python for unit tests: call :func:`evaluate_json` and
:func:`validate_json` with a :class:`Request` you build.
"""

from . import glob
from .config import ConfigError, parse_config
from .decision import Decision, Denial, Grant
from .host import Level, glob_match, log
from .policy import Policy, evaluate_json, export, validate_json
from .types import Exchange, KubernetesClaims, ObjectRef, Request, Token

__all__ = [
    "glob",
    "ConfigError",
    "parse_config",
    "Decision",
    "Denial",
    "Grant",
    "Level",
    "glob_match",
    "log",
    "Policy",
    "evaluate_json",
    "export",
    "validate_json",
    "Exchange",
    "KubernetesClaims",
    "ObjectRef",
    "Request",
    "Token",
]
