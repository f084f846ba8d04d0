"""``dhi-offline policy``: the built-in policies, to read and to copy."""

from __future__ import annotations

from typing import Annotated

import typer

from dhi_offline.verify.policy import BUILTIN_POLICIES, builtin_policy_text, parse_policy

app = typer.Typer(help="Built-in policies: list them, print one to copy.", no_args_is_help=True)


@app.command("list")
def list_policies() -> None:
    """The built-in policy names, each with its rules."""
    for name in BUILTIN_POLICIES:
        policy = parse_policy(builtin_policy_text(name), source=name)
        typer.echo(f"{name}: {'; '.join(policy.rules())}")


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(metavar="NAME", help="A built-in policy name.")],
) -> None:
    """Print a built-in policy's TOML (save it, edit it, give it to --policy)."""
    typer.echo(builtin_policy_text(name).decode("utf-8"), nl=False)
