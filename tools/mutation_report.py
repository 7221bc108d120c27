#!/usr/bin/env python3
"""Per-module report of a mutmut run; run by tools/mutation.sh inside its work directory.

Reads mutmut's result files (``mutants/<module>.py.meta``) and prints, for each mutated module:
the mutants, how many the tests killed, how many survived, the timeouts and the rest, the
killed share, and the killed share once the mutants listed as equivalent are left out.

Equivalent mutants (a change no test can observe, because the program behaves the same) are
listed in ``tools/mutation_equivalent.txt``. mutmut numbers mutants per function
(``connectrpc._core.envelope.x_encode_envelope__mutmut_3``), and those numbers move whenever the
function changes, so the file does not key them by number: a key is the module, the function
and a hash of the mutation itself, the removed and added source lines of its diff::

    connectrpc._core.envelope:EnvelopeReader.feed:1a2b3c4d5e  reason why no test can tell

The key survives edits elsewhere in the function and in the module, and goes stale only when
the mutated lines themselves change (the report then lists the entry as stale, and the
mutant shows up again as a survivor to judge anew). Two identical mutations of identical lines
in one function share a key, which is right: they are the same mutation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

# mutmut's exit-code classes (mutmut/stats.py); anything not listed is "suspicious".
_STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    5: "no tests",
    33: "no tests",
    34: "skipped",
    35: "suspicious",
    36: "timeout",
    37: "caught by type check",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
    255: "timeout",
    -11: "segfault",
    -9: "segfault",
    2: "interrupted",
    None: "not checked",
}
# A timeout means the tests did not pass with the mutant in place: it was detected.
_DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
_SEP = "\u01c1"  # mutmut's separator in mangled method names: xǁClassǁmethod


@dataclass
class Mutant:
    name: str
    module: str
    function: str
    status: str
    diff: str = ""
    change: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        digest = hashlib.sha256("\n".join(self.change).encode()).hexdigest()[:10]
        return f"{self.module}:{self.function}:{digest}"


def _function_of(name: str, module: str) -> str:
    mangled = name[len(module) + 1 :].rsplit("__mutmut_", 1)[0]
    if mangled.startswith("x" + _SEP):
        return ".".join(mangled[2:].split(_SEP))
    return mangled.removeprefix("x_")


def _diff(name: str, path: str) -> str:
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant

        return str(get_diff_for_mutant(name, path=path))
    except Exception as exc:  # a mutmut version with another internal API: report without diff
        return f"(diff unavailable: {exc})"


def _change(diff: str, name: str) -> list[str]:
    lines = [
        line[0] + " ".join(line[1:].split())
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    return lines or [name]


def load(modules: list[str]) -> list[Mutant]:
    mutants: list[Mutant] = []
    for path in modules:
        module = path.removesuffix(".py").replace("/", ".")
        meta = Path("mutants") / (path + ".meta")
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        for name, code in codes.items():
            status = _STATUS.get(code, "suspicious")
            m = Mutant(name, module, _function_of(name, module), status)
            if status not in _DETECTED:
                m.diff = _diff(name, path)
                m.change = _change(m.diff, name)
            mutants.append(m)
    return mutants


def load_equivalent(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if not path.exists():
        return entries
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, reason = line.partition(" ")
        entries[key] = reason.strip()
    return entries


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:5.1f}%" if den else "    -"


def report(modules: list[str], equivalent_file: Path, minimum: float | None) -> int:
    mutants = load(modules)
    equivalent = load_equivalent(equivalent_file)
    # Only survivors can be equivalent; the keys of detected mutants are not computed.
    used: set[str] = set()
    header = (
        f"{'module':<36} {'mutants':>7} {'killed':>6} {'survived':>8} {'timeout':>7} "
        f"{'no-test':>7} {'other':>5} {'killed%':>7} {'equiv':>5} {'non-eq killed%':>14}"
    )
    print(header)
    print("-" * len(header))
    below: list[str] = []
    totals: Counter[str] = Counter()
    survivors: list[Mutant] = []
    for path in modules:
        module = path.removesuffix(".py").replace("/", ".")
        mine = [m for m in mutants if m.module == module]
        c = Counter(m.status for m in mine)
        detected = sum(c[s] for s in _DETECTED)
        equiv = 0
        for m in mine:
            if m.status in _DETECTED:
                continue
            if m.key in equivalent:
                equiv += 1
                used.add(m.key)
            else:
                survivors.append(m)
        total = len(mine)
        other = total - c["killed"] - c["survived"] - c["timeout"] - c["no tests"]
        share = 100 * detected / (total - equiv) if total - equiv else 100.0
        if minimum is not None and total and share < minimum:
            below.append(module)
        print(
            f"{module:<36} {total:>7} {c['killed']:>6} {c['survived']:>8} {c['timeout']:>7} "
            f"{c['no tests']:>7} {other:>5} {_pct(detected, total):>7} "
            f"{equiv:>5} {_pct(detected, total - equiv):>14}"
        )
        totals.update(
            total=total, detected=detected, equiv=equiv, killed=c["killed"],
            survived=c["survived"], timeout=c["timeout"], no_tests=c["no tests"],
            other=other,
        )  # fmt: skip
    print("-" * len(header))
    t = totals
    print(
        f"{'total':<36} {t['total']:>7} {t['killed']:>6} {t['survived']:>8} {t['timeout']:>7} "
        f"{t['no_tests']:>7} {t['other']:>5} {_pct(t['detected'], t['total']):>7} "
        f"{t['equiv']:>5} {_pct(t['detected'], t['total'] - t['equiv']):>14}"
    )
    print(
        "\nkilled% = (killed + timeout) / mutants; non-eq killed% leaves out the survivors "
        f"listed in {equivalent_file.name}.\n'no-test' mutants are in code no selected test "
        "runs; they count as survivors."
    )

    print(f"\nSurvivors not listed as equivalent: {len(survivors)}")
    for m in survivors:
        change = " | ".join(m.change)
        print(f"  {m.key}  [{m.status}] {m.name.rsplit('.', 1)[-1]}\n      {change}")
    stale = sorted(
        k for k in equivalent if k not in used and k.split(":", 1)[0] in _module_names(modules)
    )
    if stale:
        print(f"\nStale entries in {equivalent_file.name} (no surviving mutant has that key):")
        for k in stale:
            print(f"  {k}")
    with open("survivors.diff", "w") as out:
        for m in survivors:
            out.write(f"### {m.key} [{m.status}] {m.name}\n{m.diff}\n\n")
    print("\nFull diffs of the survivors: survivors.diff in the work directory.")
    if below:
        print(f"\nBelow {minimum:g}% of non-equivalent mutants killed: {', '.join(below)}")
        return 1
    return 0


def _module_names(modules: list[str]) -> set[str]:
    return {p.removesuffix(".py").replace("/", ".") for p in modules}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", help="paths of the mutated modules")
    parser.add_argument("--equivalent", type=Path, required=True)
    parser.add_argument("--min", type=float, default=None, dest="minimum")
    args = parser.parse_args()
    return report(args.modules, args.equivalent, args.minimum)


if __name__ == "__main__":
    sys.exit(main())
