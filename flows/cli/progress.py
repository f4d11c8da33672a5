"""Progress on the terminal while a campaign runs: Rich bars on a TTY, one line per event in a pipe."""

from __future__ import annotations

from typing import Any

from flows.cli.errors import fmt


def make_hooks(tty: bool) -> Any:
    """Campaign hooks for this terminal: Rich bars when ``tty``, else plain lines."""
    from alcore.campaign import Hooks

    class PlainHooks(Hooks):
        """One line per iteration and per notable event: fit for logs and pipes."""

        def iteration_done(self, record: dict[str, Any]) -> None:
            print(iteration_line(record), flush=True)

        def message(self, text: str) -> None:
            print(text, flush=True)

    if not tty:
        return PlainHooks()

    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    class RichHooks(Hooks):
        """Rich bars: epochs while training, points done/failed with ETA while labelling."""

        def __init__(self) -> None:
            self.console = Console(stderr=False)
            self.progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), console=self.console, transient=True,
            )
            self.task: Any = None
            self.ok = self.failed = 0

        def start(self) -> None:
            self.progress.start()

        def stop(self) -> None:
            self.progress.stop()

        def _reset(self, description: str, total: int | None) -> None:
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(description, total=total, info="")

        def phase(self, name: str, iteration: int, total: int | None = None) -> None:
            if name == "train":
                self._reset(f"it {iteration} train (epochs)", total)
            elif name == "label":
                self.ok = self.failed = 0
                self._reset(f"it {iteration} label (points)", total)
            else:
                self._reset(f"it {iteration} {name}", None)

        def train_epoch(self, epoch: int, n_epochs: int, train_loss: float, val_loss: float | None) -> None:
            if self.task is not None:
                info = f"loss {train_loss:.3g}" + (f" val {val_loss:.3g}" if val_loss == val_loss and val_loss is not None else "")
                self.progress.update(self.task, completed=epoch, total=n_epochs, info=info)

        def label_result(self, ok: bool) -> None:
            if ok:
                self.ok += 1
            else:
                self.failed += 1
            if self.task is not None:
                self.progress.update(self.task, advance=1, info=f"ok {self.ok} failed {self.failed}")

        def phase_done(self, name: str, iteration: int, summary: dict[str, Any]) -> None:
            if self.task is not None:
                self.progress.remove_task(self.task)
                self.task = None

        def iteration_done(self, record: dict[str, Any]) -> None:
            self.progress.console.print(iteration_line(record))

        def message(self, text: str) -> None:
            self.progress.console.print(text)

    return RichHooks()


def iteration_line(rec: dict[str, Any]) -> str:
    m, t = rec.get("metrics") or {}, rec.get("timings") or {}
    steps = " ".join(f"{k} {t[k]:.1f}s" for k in ("select", "label", "train", "evaluate") if k in t)
    return (f"iteration {rec['iteration']}: rmse {fmt(m.get('rmse'))} r2 {fmt(m.get('r2'), '.3f')} "
            f"({m.get('on', 'test')}), labels {rec.get('labelled')}/{rec.get('budget')}, "
            f"failed {rec.get('failed')} [{steps}]")
