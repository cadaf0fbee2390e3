"""Parsing an identity's policy config into dataclasses, refusing unknown keys.

Declare the config as a ``@dataclass`` (fields may be ``str``, ``int``, ``float``, ``bool``,
``list[...]``, ``dict[str, ...]``, ``Optional[...]``, ``Any`` or another dataclass) and
:func:`parse_config` checks every key and type, as the Rust SDK's ``serde`` with
``deny_unknown_fields`` does: a misspelt key is an error, never a silently ignored rule.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Type, TypeVar

__all__ = ["ConfigError", "parse_config"]

T = TypeVar("T")


class ConfigError(Exception):
    """Why a config was refused. Raise it from ``Policy.validate_config`` with a message that
    tells the tenant what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The message, as the tenant will see it.
        self.message = message

    def __str__(self) -> str:
        return self.message


def parse_config(text: str, schema: Type[T]) -> T:
    """Parses the JSON ``text`` into ``schema`` (a dataclass). An empty string is read as ``{}``.

    Raises :class:`ConfigError` naming the key for invalid JSON, an unknown or missing key, or a
    value of the wrong type.
    """
    if not text or not text.strip():
        text = "{}"
    try:
        value = json.loads(text)
    except ValueError as error:
        raise ConfigError(f"invalid config: {error}") from None
    return _convert(value, schema, "config")


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{json.dumps(value)}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _fail(path: str, message: str) -> ConfigError:
    return ConfigError(f"invalid config: {message} at `{path}`")


def _convert(value: Any, ty: Any, path: str) -> Any:
    origin = typing.get_origin(ty)
    args = typing.get_args(ty)
    if ty is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _convert(value, rest[0], path)
        for option in rest:
            try:
                return _convert(value, option, path)
            except ConfigError:
                continue
        raise _fail(path, f"unexpected {_describe(value)}")
    if dataclasses.is_dataclass(ty):
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, found {_describe(value)}")
        hints = typing.get_type_hints(ty)
        fields = {f.name: f for f in dataclasses.fields(ty) if f.init}
        unknown = [k for k in value if k not in fields]
        if unknown:
            expected = ", ".join(f"`{name}`" for name in fields)
            raise _fail(path, f"unknown field `{unknown[0]}`, expected one of {expected}")
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = _convert(value[name], hints[name], f"{path}.{name}")
            elif (
                f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
            ):
                if typing.get_origin(hints[name]) is typing.Union and type(None) in typing.get_args(
                    hints[name]
                ):
                    kwargs[name] = None
                else:
                    raise _fail(path, f"missing field `{name}`")
        return ty(**kwargs)
    if origin in (list, typing.List):
        if not isinstance(value, list):
            raise _fail(path, f"expected a list, found {_describe(value)}")
        item = args[0] if args else Any
        return [_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            raise _fail(path, f"expected an object, found {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(v, item, f"{path}.{k}") for k, v in value.items()}
    if ty is bool:
        if not isinstance(value, bool):
            raise _fail(path, f"expected a boolean, found {_describe(value)}")
        return value
    if ty is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, f"expected an integer, found {_describe(value)}")
        return value
    if ty is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, f"expected a number, found {_describe(value)}")
        return float(value)
    if ty is str:
        if not isinstance(value, str):
            raise _fail(path, f"expected a string, found {_describe(value)}")
        return value
    raise TypeError(f"parse_config cannot read type {ty!r} (at `{path}`)")
