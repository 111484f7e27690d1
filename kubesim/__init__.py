"""kubesim: a simulated Kubernetes API server, for tests and demos that need a cluster.

See kubesim/README.md for what is simulated and how to drive failures.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
