"""Waiting on AWS until something settles: one polling loop for every verb, shown as a rich progress line.

A verb hands `wait_for` a `poll` function that looks once and says what it saw (`Poll`). Without a
console the loop is silent, which is how other teams' code and the Lambdas call the same functions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Poll(Generic[T_co]):
    """What one look at the thing being waited on saw."""

    done: bool
    value: T_co
    status: str = ""
    completed: float | None = None
    total: float | None = None
    # News to print once, above the progress line (new stack events, say).
    lines: tuple[str, ...] = ()


class WaitTimedOut(TimeoutError):
    """The thing waited on did not settle in time."""

    def __init__(self, description: str, timeout: float, last: Poll[object] | None) -> None:
        seen = f" (last seen: {last.status})" if last and last.status else ""
        super().__init__(f"{description}: not done after {timeout:g} s{seen}")
        self.last = last


def wait_for(
    poll: Callable[[], Poll[T]],
    *,
    description: str,
    timeout: float,
    interval: float,
    console: Console | None = None,
) -> Poll[T]:
    """Call `poll` every `interval` seconds until it is done; raise WaitTimedOut after `timeout` seconds."""
    if console is None:
        return _loop(poll, description=description, timeout=timeout, interval=interval, show=lambda _seen: None)
    columns = (
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=None, status="")

        def show(seen: Poll[T]) -> None:
            for line in seen.lines:
                progress.console.print(line, highlight=False)
            progress.update(task, status=seen.status, completed=seen.completed or 0, total=seen.total)

        last = _loop(poll, description=description, timeout=timeout, interval=interval, show=show)
        # A finished task without a total would keep its bar pulsing: mark it full.
        progress.update(task, total=last.total or 1, completed=last.total or 1)
        return last


def _loop(
    poll: Callable[[], Poll[T]],
    *,
    description: str,
    timeout: float,
    interval: float,
    show: Callable[[Poll[T]], None],
) -> Poll[T]:
    deadline = time.monotonic() + timeout
    last: Poll[T] | None = None
    while True:
        last = poll()
        show(last)
        if last.done:
            return last
        if time.monotonic() + interval > deadline:
            raise WaitTimedOut(description, timeout, last)
        time.sleep(interval)
