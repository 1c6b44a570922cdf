"""The suite. Under JPR_TEST_INSTALL=wheels (what `make test` sets under CI=true) it runs on the installed wheels.

Then `make test` runs pytest with --import-mode=append, and this moves the repository (and the working directory
that `python -c`, as pytest-xdist starts its workers, puts first) to the end of sys.path: `tests` and `fuzz` still
import from here, while `registry` and `jpr_client` come from site-packages, so a file the wheels leave out fails.
"""

import os
import sys
from pathlib import Path

if os.environ.get("JPR_TEST_INSTALL") == "wheels":
    _ROOT = str(Path(__file__).resolve().parents[1])
    _AT_ROOT = {"", ".", _ROOT}
    sys.path[:] = [entry for entry in sys.path if entry not in _AT_ROOT] + [_ROOT]
