"""``command``: run a user's executable as the oracle.

Protocol (also in docs/oracles.md):

* The command is an **argv list**, run without a shell, so no argument is ever interpreted:
  ``;``, ``|``, ``$(...)`` and backticks reach the program as plain characters.
* Input: JSON ``{"x": [..], "inputs": {name: value}}`` on stdin, or written to
  ``input.json`` in the evaluation's working directory when an argument contains the
  placeholder ``{input_file}`` (or ``input_mode="file"``).
* Output: JSON on stdout, or read from ``output.json`` when an argument contains
  ``{output_file}`` (or ``output_mode="file"``). Accepted shapes: ``{"y": [..]}``,
  ``{name: value, ...}`` with every output name, a bare list, or a bare number.
* Every evaluation runs in its own fresh working directory (``{workdir}`` placeholder), so
  concurrent evaluations on one machine never share files. It is removed afterwards unless
  ``keep_workdirs`` is set or the evaluation failed with ``keep_failed`` (for post-mortems).
* The result is read when the program's main process exits. Then, and on ``timeout``
  (seconds), every process of the evaluation is killed: its session/process group, and any
  descendant that left it (``setsid``), found by a cookie in its environment
  (:mod:`oracles.process_tree`). No background child outlives an evaluation.
* A non-zero exit, a timeout, or unparsable output raises :class:`CommandError` carrying the
  tail of stderr; the dispatcher records that as the failure reason. A program that cannot
  start, or that prints the wrong number of outputs, raises a set-up error (the same for every
  point: never retried).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .base import Oracle, OracleError, OracleSetupError, OracleTimeout, OutputShapeError
from .process_tree import COOKIE_VAR, kill_tree, new_cookie

PLACEHOLDERS = ("{input_file}", "{output_file}", "{workdir}")
STDERR_TAIL = 2000


class CommandError(OracleError):
    """The external program failed; ``stderr_tail`` holds the end of what it wrote to stderr."""

    def __init__(self, message: str, returncode: int | None = None, stderr_tail: str = "") -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        full = message if not stderr_tail else f"{message}\n--- stderr (tail) ---\n{stderr_tail}"
        super().__init__(full)


class CommandTimeout(CommandError, OracleTimeout):
    """The program ran past the timeout; all its processes were killed."""


class CommandSetupError(CommandError, OracleSetupError):
    """The program cannot run at all (not found, not executable): the same for every point."""


class CommandOutputError(CommandError, OutputShapeError):
    """The program printed a different number of outputs than the oracle declares."""


def _tail(b: bytes | None) -> str:
    return (b or b"")[-STDERR_TAIL:].decode("utf-8", "replace")


class CommandOracle(Oracle):
    """An external program as an oracle (argv list, JSON in/out, per-evaluation directory)."""

    name = "command"
    version = "1.0"
    description = "external program: argv list (no shell), JSON on stdin/file -> JSON on stdout/file"

    def __init__(
        self,
        argv: Sequence[str],
        bounds: Any,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
        input_mode: str | None = None,
        output_mode: str | None = None,
        timeout: float | None = None,
        workdir: str | os.PathLike | None = None,
        keep_workdirs: bool = False,
        keep_failed: bool = False,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        version: str | None = None,
    ) -> None:
        if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence) or not argv:
            raise ValueError(
                f"command: argv must be a non-empty list of strings (no shell is used), got {argv!r}"
            )
        self.argv = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in argv]
        if not all(isinstance(a, str) for a in self.argv):
            raise ValueError(f"command: every argv entry must be a string, got {argv!r}")
        joined = " ".join(self.argv)
        self.input_mode = input_mode or ("file" if "{input_file}" in joined else "stdin")
        self.output_mode = output_mode or ("file" if "{output_file}" in joined else "stdout")
        if self.input_mode not in ("stdin", "file"):
            raise ValueError(f"command: input_mode must be 'stdin' or 'file', got {input_mode!r}")
        if self.output_mode not in ("stdout", "file"):
            raise ValueError(f"command: output_mode must be 'stdout' or 'file', got {output_mode!r}")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"command: timeout must be a positive number of seconds, got {timeout!r}")
        self.timeout = None if timeout is None else float(timeout)
        self.workdir = None if workdir is None else str(workdir)
        self.keep_workdirs = bool(keep_workdirs)
        self.keep_failed = bool(keep_failed)
        self.env = dict(env) if env is not None else None
        if name:
            self.name = name
        if version is not None:
            self.version = str(version)
        self._setup(bounds, output_names, input_names,
                    params={"argv": self.argv, "input_mode": self.input_mode,
                            "output_mode": self.output_mode, "timeout": self.timeout})

    def _parse(self, text: str) -> np.ndarray:
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"output is not valid JSON ({exc}): {text[:200]!r}") from None
        if isinstance(obj, Mapping):
            if "y" in obj:
                obj = obj["y"]
            elif all(n in obj for n in self.output_names):
                obj = [obj[n] for n in self.output_names]
            else:
                raise ValueError(
                    f"output JSON must hold 'y' or every output name {list(self.output_names)}, "
                    f"got keys {list(obj)}"
                )
        try:
            return np.atleast_1d(np.asarray(obj, dtype=float)).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"output JSON is not numeric: {text[:200]!r}") from None

    def _declare_outputs_hint(self, n_returned: int) -> str:
        return f"set oracle.params output_names = {self._suggested_output_names(n_returned)}"

    def abort(self) -> None:
        """Kill the programs (with all their descendants) this oracle is running in this process."""
        with _LIVE_LOCK:
            live = [(cookie, pid) for cookie, (owner, pid) in _LIVE.items() if owner == id(self)]
        for cookie, pid in live:
            kill_tree(pid, cookie)

    def _evaluate(self, x: np.ndarray) -> np.ndarray:
        if self.workdir is not None:
            Path(self.workdir).mkdir(parents=True, exist_ok=True)
        wd = Path(tempfile.mkdtemp(prefix=f"alflow-{self.name}-", dir=self.workdir))
        in_file, out_file = wd / "input.json", wd / "output.json"
        payload = json.dumps({"x": x.tolist(), "inputs": dict(zip(self.input_names, x.tolist()))})
        subs = {"{input_file}": str(in_file), "{output_file}": str(out_file), "{workdir}": str(wd)}
        argv = []
        for a in self.argv:
            for k, v in subs.items():
                a = a.replace(k, v)
            argv.append(a)
        if self.input_mode == "file":
            in_file.write_text(payload)
        ok = False
        try:
            out, err, code = self._run(argv, wd, payload.encode() if self.input_mode == "stdin" else b"")
            if code != 0:
                raise CommandError(f"command: {argv[0]!r} exited with status {code}", code, _tail(err))
            if self.output_mode == "file":
                if not out_file.exists():
                    raise CommandError(f"command: {argv[0]!r} wrote no output file {out_file.name}",
                                       0, _tail(err))
                text = out_file.read_text()
            else:
                text = out.decode("utf-8", "replace")
            try:
                y = self._parse(text)
            except ValueError as exc:
                raise CommandError(f"command: {argv[0]!r}: {exc}", 0, _tail(err)) from None
            if y.shape != (self.output_dim,):
                raise CommandOutputError(self.describe_output_mismatch(y.size), 0, _tail(err))
            ok = True
            return y
        finally:
            if not (self.keep_workdirs or (self.keep_failed and not ok)):
                shutil.rmtree(wd, ignore_errors=True)

    def _run(self, argv: list[str], wd: Path, stdin_data: bytes) -> tuple[bytes, bytes, int]:
        """Run ``argv`` to the exit of its main process; then kill everything it left behind.

        stdout and stderr go to anonymous temporary files, not pipes: a background child that
        inherited them (and outlives the main process) would keep a pipe open, and reading to
        end-of-file would wait for that child. The result is what the main process wrote by
        the time it exited. Every process of the evaluation (its group, and any process that
        carries its cookie in the environment, such as a child that called ``setsid``) is
        killed on timeout, on interruption, and after a normal exit.
        """
        cookie = new_cookie()
        env = {**os.environ, **(self.env or {}), COOKIE_VAR: cookie}
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(stdin_data)
            fin.seek(0)
            try:
                proc = subprocess.Popen(argv, cwd=wd, env=env, start_new_session=True,
                                        stdin=fin, stdout=fout, stderr=ferr)
            except OSError as exc:
                raise CommandSetupError(f"command: cannot start {argv[0]!r}: {exc}") from None
            with _LIVE_LOCK:
                _LIVE[cookie] = (id(self), proc.pid)
            try:
                try:
                    code = proc.wait(timeout=self.timeout)
                except subprocess.TimeoutExpired:
                    kill_tree(proc.pid, cookie)
                    proc.wait()
                    raise CommandTimeout(
                        f"command: {argv[0]!r} timed out after {self.timeout} s (all its processes killed)",
                        None, _tail(_read(ferr))) from None
            finally:
                # After a normal exit too: nothing the program started may outlive the evaluation.
                kill_tree(proc.pid, cookie)
                if proc.returncode is None:  # interrupted while waiting
                    proc.wait()
                with _LIVE_LOCK:
                    _LIVE.pop(cookie, None)
            return _read(fout), _read(ferr), code


def _read(fh: Any) -> bytes:
    fh.seek(0)
    return fh.read()


# Programs running in this process: cookie -> (id of the CommandOracle, pid of the main process).
# Module-level, not on the instance, so that the oracle stays picklable.
_LIVE: dict[str, tuple[int, int]] = {}
_LIVE_LOCK = threading.Lock()
