"""Passwords read from files: the target key `password_file=PATH`, for Docker and Kubernetes
secrets mounted as files, so that no password shows in `docker inspect` or `ps`.

The file is read when the target is parsed (one that cannot be read stops start-up, exit 78)
and again at every connect (Redis) or request (HTTP), so a rotated secret is used from the
next connection on, without a restart. Every password read is given to `config.add_secret`, so
that logs, endpoints and outputs hide it like a password in a URL, the rotated ones included.
"""

from __future__ import annotations

from hc.config import ConfigError, Option, add_secret, read_value


class PasswordFileError(Exception):
    """The password file cannot be used; the message is one line naming the path and the
    reason, never the content."""

    def __init__(self, path: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"password_file {path}: {reason}")


def read_password(path: str) -> str:
    """The password in the file at `path` (see `config.read_value`). Raises PasswordFileError
    when it cannot be read or is empty."""
    try:
        password = read_value(path)
    except ValueError as exc:
        raise PasswordFileError(path, str(exc)) from None
    if not password:
        raise PasswordFileError(path, "empty")
    add_secret(password)
    return password


class _PasswordFile(Option):
    """`password_file`: a path whose file must be readable when the target is parsed."""

    def parse(self, raw: object, source: str) -> str:
        path = str(super().parse(raw, source))
        if path:
            try:
                read_password(path)
            except PasswordFileError as exc:
                raise ConfigError(self.name, path, source, exc.reason) from None
        return path


PASSWORD_FILE = _PasswordFile(
    "password_file", str, "", "File holding the password (Redis AUTH, HTTP basic auth), read "
    "when the target is parsed and at every (re)connect; instead of a password in the URL.",
    frozenset())
"""A key of every kind that logs in with a password."""
BOTH_PASSWORDS = "a password in the URL and password_file: give it in one place"
"""Why a target with both cannot be checked."""
