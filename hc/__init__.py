"""hc: one static binary that runs a service and health-checks it from inside a scratch image.

Importing `hc` is cheap on purpose: the probe (`hc healthcheck`) pays for every import.
"""

__version__ = "0.1.0"
