"""kubesim: a simulated Kubernetes API server for Apollo's tests and demo.

See kubesim/README.md for what is simulated and how to drive failures.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
