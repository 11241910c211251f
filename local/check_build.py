"""After `sam build`: every native library packed must match the architecture template.yaml
declares (an arm64 function with x86-64 wheels fails at import, only once deployed)."""

from __future__ import annotations

import sys
from pathlib import Path

from local import template
from local.paths import ROOT

ELF_MACHINES = {62: "x86_64", 183: "arm64"}


def machine(path: Path) -> str | None:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return None
    return ELF_MACHINES.get(int.from_bytes(head[18:20], "little"), f"e_machine={head[18:20].hex()}")


def main() -> int:
    wanted = set(template.document()["Globals"]["Function"]["Architectures"])
    build = ROOT / ".aws-sam" / "build"
    libraries = [p for p in build.rglob("*.so*") if p.is_file()]
    if not libraries:
        print("no native libraries found: run `sam build` first", file=sys.stderr)
        return 1
    wrong = [(p, m) for p in libraries if (m := machine(p)) and m not in wanted]
    for path, found in wrong:
        print(f"{path.relative_to(build)}: {found}, template wants {sorted(wanted)}", file=sys.stderr)
    print(f"{len(libraries)} native libraries checked against {sorted(wanted)}: {len(wrong)} mismatched")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
