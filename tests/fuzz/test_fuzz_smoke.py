"""CI smoke pass over every fuzz target: its seed corpus, then fresh random and mutated inputs.

Each target (see ``targets.py``) runs over ``tests/fuzz/corpus/<target>/`` and then, for its
share of the time budget (``CONNECTRPC_FUZZ_SMOKE_SECONDS``, 60 s in all by default), over
random bytes and mutations of the seeds (``mutate.py``, seeded: set
``CONNECTRPC_FUZZ_SMOKE_SEED`` to vary it). A test fails when a target raises anything,
i.e. a parser raised something other than a ``ConnectError`` or broke an invariant; when
one input takes longer than ``HANG_SECONDS``; or when the process grows by more than
``RSS_GROWTH_MB``. The failing input is saved and printed so that it can be replayed with
``uv run python -m tests.fuzz.runner <target> <file>`` or turned into a regression test.

Long, coverage-guided campaigns: ``tools/fuzz.sh``.
"""

from __future__ import annotations

import os
import random
import resource
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from .mutate import mutate
from .targets import TARGETS, InvariantViolationError, Target

CORPUS = Path(__file__).resolve().parent / "corpus"
TOTAL_SECONDS = float(os.environ.get("CONNECTRPC_FUZZ_SMOKE_SECONDS", "60"))
SEED = int(os.environ.get("CONNECTRPC_FUZZ_SMOKE_SEED", "20240808"))
HANG_SECONDS = 10
RSS_GROWTH_MB = 512


class HangError(Exception):
    """An input ran for longer than ``HANG_SECONDS``."""


def seeds(name: str) -> list[bytes]:
    directory = CORPUS / name
    return [p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()]


def inputs(t: Target, budget: float) -> Iterator[tuple[str, bytes]]:
    """The seeds, then random and mutated inputs until ``budget`` seconds have passed."""
    corpus = seeds(t.name)
    yield from ((f"seed {i}", data) for i, data in enumerate(corpus))
    rng = random.Random(f"{SEED}:{t.name}")
    deadline = time.monotonic() + budget
    n = 0
    while time.monotonic() < deadline:
        n += 1
        if not corpus or rng.random() < 0.1:
            data = rng.randbytes(rng.randint(0, 64))
        else:
            data = mutate(rng.choice(corpus), corpus, rng)
            if rng.random() < 0.2:
                data = mutate(data, corpus, rng)
        yield f"random input {n}", data[: t.max_len]


def _max_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise HangError(f"an input ran for more than {HANG_SECONDS} s")


def test_every_target_has_seeds() -> None:
    for name in TARGETS:
        assert seeds(name), f"tests/fuzz/corpus/{name}/ is empty"
    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    assert total < 1 << 20, f"the seed corpus is {total} bytes: keep it well under 1 MB"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_survives_corpus_and_random_inputs(name: str, tmp_path: Path) -> None:
    t = TARGETS[name]
    budget = TOTAL_SECONDS / len(TARGETS)
    rss_before = _max_rss_mb()
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    executions = 0
    try:
        for label, data in inputs(t, budget):
            signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
            try:
                t.fn(data)
            except (Exception, HangError) as exc:
                signal.setitimer(signal.ITIMER_REAL, 0)
                crash = tmp_path / f"crash-{name}"
                crash.write_bytes(data)
                kind = (
                    "invariant violated" if isinstance(exc, InvariantViolationError) else "raised"
                )
                shown = data.hex() if len(data) <= 512 else data[:512].hex() + "..."
                pytest.fail(
                    f"fuzz target {name} {kind} on {label} ({len(data)} bytes, saved to "
                    f"{crash}; replay: uv run python -m tests.fuzz.runner {name} {crash}):\n"
                    f"input hex: {shown}\n{''.join(traceback.format_exception(exc))}",
                    pytrace=False,
                )
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            executions += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    growth = _max_rss_mb() - rss_before
    assert growth < RSS_GROWTH_MB, f"{name}: peak RSS grew by {growth:.0f} MB"
    assert executions > len(seeds(name)), f"{name}: no random inputs ran"
