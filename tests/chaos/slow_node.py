"""A plasmd whose every job starts late (test use only): an honest but slow executor.

Each sandbox run first sleeps ``PLASM_SLOW_S`` seconds (default 2), then runs the job for
real, so its output and receipt are true; only the time a requester waits grows. With one
executor slot it takes one such job at a time and refuses offers (``busy``) meanwhile.
Everything else is the real daemon. Started by the chaos test as a separate process:

    PLASM_SLOW_S=2 python tests/chaos/slow_node.py run --state-dir ... --listen ...
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from plasm.cli import main
from plasm.runtime import sandbox as sandbox_module

DELAY_S = float(os.environ.get("PLASM_SLOW_S", "2"))


def slow_down(delay_s: float) -> None:
    honest_run = sandbox_module.Sandbox.run

    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(delay_s)
        return honest_run(self, *args, **kwargs)

    sandbox_module.Sandbox.run = run  # type: ignore[method-assign]


slow_down(DELAY_S)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
