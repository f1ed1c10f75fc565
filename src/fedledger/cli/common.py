"""What every command shares: consoles and the error boundary."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from fedledger.errors import ConfigError, FedledgerError

__all__ = ["console", "err_console", "friendly_errors"]

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn fedledger errors into one line on stderr: exit 2 for config errors, 1 otherwise."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            err_console.print(f"[bold red]config error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except FedledgerError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except OSError as exc:  # an unwritable --out, a full disk, a file vanishing mid-read
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; the run folder keeps every finished round")
            sys.exit(130)

    return wrapper
