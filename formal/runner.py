"""Run one proof: a harness to RTLIL, SymbiYosys on it, the verdict.

SymbiYosys calls `yosys`, `yosys-smtbmc`, `yosys-abc`, `yosys-witness` and
`boolector` by their plain names; the YoWASP packages install them as
``yowasp-*``. `shims` writes one-line scripts under the plain names into a
directory that goes first on SymbiYosys's PATH, so nothing is installed
outside the virtual environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["Proof", "Result", "FormalToolError", "shims", "run"]

TOOLS = ("yosys", "yosys-smtbmc", "yosys-witness", "boolector")     # (the smtbmc engine needs no abc)


class FormalToolError(RuntimeError):
    """SymbiYosys or a solver is missing or broke (not a failed proof)."""


@dataclass(frozen=True)
class Proof:
    """A named harness and how to check it: `mode` ``"prove"`` (bounded
    base case plus k-induction of `depth` steps: holds for every trace) or
    ``"bmc"`` (holds for every trace of `depth` cycles from reset); the
    cover task always runs too, so that a proof whose assumptions rule out
    everything is caught (every `Cover` must be reached)."""
    name: str
    build: object              # () -> Elaboratable
    mode: str = "prove"
    depth: int = 20
    claim: str = ""
    cover_depth: int | None = None     # the cover task's bound (default `depth`)


@dataclass
class Result:
    name: str
    mode: str
    depth: int
    status: str                # "pass", "fail" (a counterexample), "unknown" (induction open), "cover-unreached"
    seconds: float
    log: str                   # where SymbiYosys's log is
    claim: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _bin_dir() -> Path:
    return Path(sys.executable).parent


def shims(directory: Path) -> Path:
    """Write the plain-named tool scripts into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for tool in TOOLS:
        target = _bin_dir() / f"yowasp-{tool}"
        if not target.exists():
            target = shutil.which(f"yowasp-{tool}")
            if target is None:
                extra = "formal" if tool == "boolector" else "test"
                raise FormalToolError(f"yowasp-{tool} is not installed: pip install -e '.[{extra}]' "
                                      f"(make formal does it)")
        shim = directory / tool
        text = f'#!/bin/sh\nexec "{target}" "$@"\n'
        if not shim.exists() or shim.read_text() != text:
            tmp = shim.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            tmp.replace(shim)
    return directory


SBY = """[tasks]
check
cover

[options]
check: mode {mode}
check: depth {depth}
cover: mode cover
cover: depth {cover_depth}

[engines]
smtbmc boolector

[script]
read_rtlil top.il
prep -top top

[files]
top.il
"""


def _task_status(work: Path, task: str) -> str | None:
    status = work / f"proof_{task}" / "status"
    return status.read_text().split()[0].lower() if status.exists() else None


def run(proof: Proof, build_dir: Path) -> Result:
    """Check `proof` in ``build_dir/<name>``; a tool failure raises
    `FormalToolError` (after one retry: the very first run after install
    can fail while the WebAssembly is compiled and cached)."""
    build_dir = Path(build_dir).resolve()
    work = build_dir / proof.name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "top.il").write_text(rtlil.convert(proof.build(), ports=[]))
    (work / "proof.sby").write_text(SBY.format(mode=proof.mode, depth=proof.depth,
                                               cover_depth=proof.cover_depth or proof.depth))
    env = dict(os.environ, PATH=f"{shims(build_dir / 'bin')}{os.pathsep}{os.environ.get('PATH', '')}")
    sby = _bin_dir() / "yowasp-sby"
    if not sby.exists():
        raise FormalToolError("yowasp-sby is not installed: pip install -e '.[formal]' (make formal does it)")
    t0 = time.monotonic()
    for attempt in range(2):
        done = subprocess.run([str(sby), "-f", "proof.sby"], cwd=work, env=env, capture_output=True, text=True)
        (work / "sby.log").write_text(done.stdout + done.stderr)
        check, cover = _task_status(work, "check"), _task_status(work, "cover")
        if check in ("pass", "fail", "unknown") and cover in ("pass", "fail"):
            break
        if attempt == 0:
            for task in ("check", "cover"):
                shutil.rmtree(work / f"proof_{task}", ignore_errors=True)
    else:
        raise FormalToolError(f"SymbiYosys did not finish {proof.name} (check: {check}, cover: {cover}); "
                              f"see {work / 'sby.log'}")
    # "unknown": k-induction did not close (the base case held): not a proof
    status = check if check in ("fail", "unknown") else "cover-unreached" if cover == "fail" else "pass"
    return Result(proof.name, proof.mode, proof.depth, status, round(time.monotonic() - t0, 1),
                  str(work / "sby.log"), proof.claim)
