"""The kinds of health a service publishes, defined once for the health kit, its HTTP
endpoints, `hc healthcheck --mode` and the probe. Constants only: the probe imports this."""

TAGS = ("live", "ready", "startup")
"""A check tagged `live` feeds /livez, `ready` feeds /readyz, `startup` feeds /startupz; the
probe's `--mode` picks one of them."""
ENDPOINT_OF_TAG = {"live": "livez", "ready": "readyz", "startup": "startupz"}
ENDPOINTS: dict[str, str | None] = {
    **{endpoint: tag for tag, endpoint in ENDPOINT_OF_TAG.items()}, "healthz": None}
"""Endpoint name -> the tag whose checks it reports (None: every check)."""
