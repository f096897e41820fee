"""Rewrite the Mermaid state diagram in README.md from chalicelib.workflow.TRANSITIONS.

Usage: python scripts/readme_diagram.py   (make readme-diagram)
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chalicelib.workflow import mermaid_diagram  # noqa: E402


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    updated, count = re.subn(r"```mermaid\n.*?```", lambda _m: f"```mermaid\n{mermaid_diagram()}```", text, flags=re.S)
    if count != 1:
        print("README.md must hold exactly one ```mermaid block", file=sys.stderr)
        return 1
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main())
