"""The live features of an environment (the top layer, see docs/architecture.md): the shared
status watch, the status page and socket, LiveTail, the shell and the Jolokia proxy."""
