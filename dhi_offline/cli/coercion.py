"""Option values converted without pydantic when typer's conversion is the identity.

Typer 0.29 converts every parameter through a pydantic ``TypeAdapter``: importing
pydantic and building the adapters is about 60 ms of a command's start-up, a third of a
``sigstore verify-bundle`` run. For a text, a flag, a path or a choice, the adapter only calls
typer's own helper, which is called here directly; anything else (numbers, lists,
parsers, ``allow_dash``, a value that does not convert) goes through typer unchanged, so
errors keep typer's wording. ``tests/cli/test_startup.py`` compares both conversions on
every parameter of every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args, get_origin

import typer.core
from typer import _coercion
from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path

if TYPE_CHECKING:
    from typer._click import Context
    from typer.core import _TyperParameter

_typer_build = _coercion.build_runtime_param

Kind = Literal["str", "bool", "path", "paths", "choice"]


def _is_plain_path(annotation: Any, info: Any) -> bool:
    return (
        isinstance(annotation, type)
        and issubclass(annotation, Path)
        and info.path_type is None
        and not info.allow_dash
        and routes_to_path(annotation, info)
    )


def _kind(descriptor: _coercion.TypeDescriptor) -> Kind | None:
    """What the light conversion does for ``descriptor``, or None: typer's own."""
    info = descriptor.parameter_info
    annotation = descriptor.annotation
    if descriptor.file_annotation is not None or info.parser is not None:
        return None
    if annotation is str:
        return "str"
    if annotation is bool:
        return "bool"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "choice"
    if _is_plain_path(annotation, info):
        return "path"
    origin: Any = get_origin(annotation)
    if origin is list and len(get_args(annotation)) == 1:
        # A repeatable path option (--trust-exporter A --trust-exporter B).
        (item,) = get_args(annotation)
        if _is_plain_path(item, info):
            return "paths"
    return None


class _Fallback(Exception):
    """The light conversion does not apply to this value: typer converts it."""


@dataclass(frozen=True)
class LightRuntimeParam(_coercion.RuntimeParam):
    """Typer's conversion of a text, flag, path or choice, without its pydantic wrapper."""

    descriptor: _coercion.TypeDescriptor
    kind: Kind

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        try:
            return self._light(value, param, ctx)
        except (_Fallback, ValueError):
            # typer's adapter gives the same value, or the error in its own words.
            typer_param = _typer_build(self.descriptor)
            return typer_param._coerce_value(value, param=param, ctx=ctx)

    def _light(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if self.kind == "choice" and isinstance(value, (str, Enum)):
            return coerce_cli_choice(
                value,
                choices=tuple(self.annotation),
                case_sensitive=self.parameter_info.case_sensitive,
                ctx=ctx,
            )
        if (self.kind == "str" and isinstance(value, str)) or (
            self.kind == "bool" and isinstance(value, bool)
        ):
            return value
        if self.kind == "path":
            return self._path(value, self.annotation, param, ctx)
        if self.kind == "paths" and isinstance(value, (list, tuple)):
            (item,) = get_args(self.annotation)
            return [self._path(v, item, param, ctx) for v in value]
        raise _Fallback

    def _path(self, value: Any, path_type: type[Path], param: _TyperParameter, ctx: Context) -> Any:
        if isinstance(value, path_type):
            path = value  # a default: typer checks it as it is
        elif isinstance(value, str):
            path = path_type(value)
            if str(path) != value:
                # "a/./b", "dir/": typer's messages quote the text as given.
                raise _Fallback
        else:
            raise _Fallback
        # As typer's path conversion: the checks on the Path typer would make (through
        # pydantic: the same object), and that Path returned.
        return coerce_cli_path(path, self.parameter_info, path_type=path_type, param=param, ctx=ctx)


def build_runtime_param(descriptor: _coercion.TypeDescriptor) -> _coercion.RuntimeParam:
    """The light conversion for ``descriptor`` when it applies, else typer's."""
    kind = _kind(descriptor)
    if kind is None:
        return _typer_build(descriptor)
    return LightRuntimeParam(
        annotation=descriptor.annotation,
        parameter_info=descriptor.parameter_info,
        descriptor=descriptor,
        kind=kind,
    )


def install() -> None:
    """Use the light conversion in every typer command (idempotent)."""
    typer.core.build_runtime_param = build_runtime_param  # type: ignore[attr-defined]
