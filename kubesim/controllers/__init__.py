"""Controllers running as asyncio tasks inside the server (deployment, replicaset, kubelet, gc)."""
