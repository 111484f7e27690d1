"""kubesim fixtures for this folder.

The root tests/conftest.py may load `kubesim.pytest_plugin` through `pytest_plugins`; then the
fixtures already exist and importing them here would define a second session server, so they
are imported only when the plugin is not loaded yet.
"""

import sys

if "kubesim.pytest_plugin" not in sys.modules:
    from kubesim.pytest_plugin import (  # noqa: F401
        kubesim,
        kubesim_api,
        kubesim_faults,
        kubesim_namespace,
    )
