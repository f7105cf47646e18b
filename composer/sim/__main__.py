"""``python -m composer.sim``: the same as ``composer sim``."""

from __future__ import annotations

from composer.sim.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
