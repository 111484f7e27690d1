"""kubesim fixtures for this folder.

The root tests/conftest.py loads `kubesim.pytest_plugin` through `pytest_plugins`, so the
fixtures normally exist already. The import below only runs when this folder is used without
that root conftest; importing them a second time would define a second session server.
"""

import sys

if "kubesim.pytest_plugin" not in sys.modules:
    from kubesim.pytest_plugin import (  # noqa: F401
        kubesim,
        kubesim_api,
        kubesim_faults,
        kubesim_namespace,
    )
