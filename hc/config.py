"""The one settings object for `hc serve` and `hc healthcheck`.

Every option is defined once, in `OPTIONS`: its type, default, help text, environment variable
and flag all come from that entry, and the CLI, the probe's fast path and `hc config` read it.
Precedence is defaults < TOML file (`--config` / `HC_CONFIG`) < `HC_*` environment < flags.

The probe imports this module on every run, so it imports only what that path needs (`os`,
`math`); what only `hc serve` or a config file needs is imported where it is used.
tests/test_probe.py guards the probe's import set.
"""

from __future__ import annotations

import math
import os

from hc.endpoints import TAGS

TYPE_CHECKING = False  # typing itself costs the probe ~2 ms; mypy reads the block below
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

SERVE = "serve"
PROBE = "healthcheck"
EVERY = "config"
"""`hc config` shows every option."""
BOTH = frozenset({SERVE, PROBE})

FILE_SUFFIX = "_FILE"
"""`HC_<NAME>_FILE=PATH` gives a setting the content of PATH, the convention of the official
database images for secrets mounted as files (Docker and Kubernetes secrets)."""
FILE_LIMIT = 1 << 20
"""Bytes a setting's file may hold: more is a mistake (a wrong path), not a value."""

LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A setting with a bad value; the message is one line naming key, value and source."""

    def __init__(self, key: str, value: object, source: str, expected: str) -> None:
        self.key, self.value, self.source, self.expected = key, value, source, expected
        super().__init__(f"{key}={value!r} (from {source}): {expected}")


class UsageError(ValueError):
    """A malformed command line (unknown flag, missing value); the message is one line."""


class Option:
    """One setting: where it is read from, what it accepts and what `--help` says of it.

    A plain class rather than a dataclass: the probe imports this module on every run, and
    `dataclasses` (with `inspect`) would cost it several milliseconds.
    """

    __slots__ = ("choices", "commands", "default", "help", "kind", "maximum", "minimum", "name",
                 "repeated", "secret")

    def __init__(self, name: str, kind: type, default: Any, help: str,
                 commands: frozenset[str], *, choices: tuple[str, ...] = (),
                 minimum: float | None = None, maximum: float | None = None,
                 repeated: bool = False, secret: bool = False) -> None:
        self.name, self.kind, self.default, self.help = name, kind, default, help
        self.commands, self.choices = commands, choices
        self.minimum, self.maximum = minimum, maximum
        self.repeated, self.secret = repeated, secret

    def __repr__(self) -> str:
        return f"Option({self.name!r})"

    @property
    def env(self) -> str:
        return "HC_" + self.name.upper()

    @property
    def env_file(self) -> str:
        """The variable naming a file that holds the value (`HC_TARGET_FILE`), for secrets."""
        return self.env + FILE_SUFFIX

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, raw: object, source: str) -> Any:
        """Convert a raw value (a TOML value, an env string or a flag) and check its range."""
        if self.repeated:
            items = raw.split() if isinstance(raw, str) else raw
            if not isinstance(items, list | tuple):
                raise ConfigError(self.name, raw, source, "expected a list")
            return tuple(items)
        value = _convert(self, raw, source)
        if self.choices:
            value = value.lower()  # HC_LOG_LEVEL=INFO as well as info
            if value not in self.choices:
                raise ConfigError(self.name, raw, source,
                                  "expected one of " + ", ".join(self.choices))
        if isinstance(value, int | float) and not isinstance(value, bool):
            low, high = self.minimum, self.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                raise ConfigError(self.name, raw, source, f"expected {_range(self)}")
        return value


def _range(option: Option) -> str:
    noun = "an integer" if option.kind is int else "a number"
    if option.minimum is not None and option.maximum is not None:
        return f"{noun} from {option.minimum:g} to {option.maximum:g}"
    if option.minimum is not None:
        return f"{noun} >= {option.minimum:g}"
    return noun


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _convert(option: Option, raw: object, source: str) -> Any:
    kind = option.kind
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in _TRUE | _FALSE:
            return raw.strip().lower() in _TRUE
        raise ConfigError(option.name, raw, source, "expected true or false")
    if kind is str:
        if isinstance(raw, str):
            return raw
        raise ConfigError(option.name, raw, source, "expected a string")
    if isinstance(raw, bool) or (isinstance(raw, str) and not _plain_number(raw)):
        raise ConfigError(option.name, raw, source, f"expected {_range(option)}")
    try:
        if kind is int:
            if isinstance(raw, float):
                raise ValueError
            return int(str(raw).strip(), 10)
        value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: a huge TOML integer
        raise ConfigError(option.name, raw, source, f"expected {_range(option)}") from None
    if not math.isfinite(value):
        raise ConfigError(option.name, raw, source, f"expected {_range(option)}")
    return value


def _plain_number(text: str) -> bool:
    """Digits as people write them in a config: ASCII only, no `_` separators (Python's int()
    and float() take `2_0100` and Arabic-Indic digits, which no operator means)."""
    return text.isascii() and "_" not in text


MAX_SECONDS = 86400.0
"""The longest duration any setting or target key takes: a day. Longer is a typo (`1e308`
would leave a target pending forever) and is refused."""


def seconds(name: str, default: float | None, help: str, commands: frozenset[str], *,
            minimum: float = 0.0, maximum: float = MAX_SECONDS) -> Option:
    """An option (or target key) counted in seconds, bounded on both sides."""
    return Option(name, float, default, help, commands, minimum=minimum, maximum=maximum)


OPTIONS: tuple[Option, ...] = (
    Option("config", str, "", "TOML file with settings (keys are the option names).", BOTH),
    Option("host", str, "0.0.0.0", "Address to listen on; the probe maps 0.0.0.0 to 127.0.0.1 "
           "and :: to ::1.", BOTH),
    Option("port", int, 8080, "TCP port of the health/metrics server.", BOTH,
           minimum=1, maximum=65535),
    Option("uds", str, "", "Listen on (and probe) this unix socket path instead of host:port.",
           BOTH),
    Option("state_dir", str, "", "Directory of the state snapshot read by the probe "
           "(default /dev/shm/hc-<uid>, else <tmp>/hc-<uid>).", BOTH),
    Option("reuse_port", bool, False, "Share the TCP port with other hc processes of the same "
           "user that set this too (SO_REUSEPORT), as the old and the new task of a "
           "start-first rolling update on a host network must; the kernel spreads connections "
           "among them, and the probe reaches its own service through a unix socket in the "
           "state dir.", BOTH),
    seconds("drain_delay", 1.0, "Seconds between SIGTERM (readiness fails) and closing the "
            "listener.", frozenset({SERVE})),
    seconds("shutdown_timeout", 5.0, "Seconds in-flight requests get to finish after the "
            "listener closes.", frozenset({SERVE})),
    seconds("check_interval", 2.0, "Seconds between runs of each health check.",
            frozenset({SERVE}), minimum=0.05),
    seconds("check_timeout", 1.0, "Seconds a health check may run before it counts as "
            "failed.", frozenset({SERVE}), minimum=0.01),
    seconds("heartbeat_max_age", 10.0, "Seconds a loop may go without a heartbeat before it "
            "counts as stuck (the watcher's loop beats twice a second: at least 1).",
            frozenset({SERVE}), minimum=0.1),
    seconds("loop_lag_warn", 0.25, "Event-loop lag (s) that makes the loop check warn.",
            frozenset({SERVE})),
    seconds("loop_lag_fail", 2.0, "Event-loop lag (s) that makes the loop check fail.",
            frozenset({SERVE})),
    Option("rss_warn_mb", int, 0, "Resident memory (MiB) that makes the memory check warn; "
           "0 turns it off.", frozenset({SERVE}), minimum=0),
    Option("rss_fail_mb", int, 0, "Resident memory (MiB) that makes the memory check fail; "
           "0 turns it off.", frozenset({SERVE}), minimum=0),
    seconds("state_interval", 2.0, "Seconds between state snapshot writes (also written on "
            "every change).", frozenset({SERVE}), minimum=0.1, maximum=60.0),
    seconds("sweep_age", 120.0, "Seconds after which the single-file binary's dirs in the temp "
            "dir that no process uses are removed: left by a run killed while unpacking, or "
            "of another build (static binary only); 0 turns it off.", frozenset({SERVE})),
    Option("log_level", str, "info", "Log level.", frozenset({SERVE}), choices=LOG_LEVELS),
    Option("log_format", str, "text", "Log lines as text, or as one JSON object per line (time, "
           "level, logger, message, and target, check, status, reason where they apply).",
           frozenset({SERVE}), choices=("text", "json")),
    Option("access_log", bool, False, "Log HTTP requests (probe paths are never logged).",
           frozenset({SERVE})),
    Option("target", str, (), "Dependency to watch: URL[,name=N][,interval=S][,timeout=S]"
           "[,critical][,key=value...]; URL is redis://, rediss://, unix://, "
           "sentinel://host:port[,host:port...]/MASTER[?password=DATA], http://, https:// or "
           "tcp://host:port; other keys: expect=200-299 (http), ca_file=PATH (http, redis), "
           "password_file=PATH (redis, sentinel, http: the password, read at each connect), "
           "role=primary|replica (redis), lag_warn=BYTES, lag_fail=BYTES, last_io_warn=S, "
           "last_io_fail=S (redis, sentinel); repeatable (env: space-separated).",
           frozenset({SERVE}), repeated=True, secret=True),
    seconds("target_interval", 5.0, "Seconds between checks of a target without interval=.",
            frozenset({SERVE}), minimum=0.1),
    seconds("target_timeout", 2.0, "Seconds a target check without timeout= may take before "
            "it fails.", frozenset({SERVE}), minimum=0.01),
    Option("max_concurrency", int, 32, "Target checks that may run at the same time.",
           frozenset({SERVE}), minimum=1, maximum=10000),
    Option("jitter", float, 0.1, "Fraction of its interval by which each target check after "
           "the first (which runs at start) is moved at random, to spread the load.",
           frozenset({SERVE}), minimum=0.0, maximum=0.5),
    Option("redis_lag_warn", int, 16 * 2**20, "Replication lag (bytes) at which a Redis "
           "primary target warns, unless lag_warn= is given; 0 turns it off.",
           frozenset({SERVE}), minimum=0),
    Option("redis_lag_fail", int, 0, "Replication lag (bytes) at which a Redis primary "
           "target fails, unless lag_fail= is given; 0 turns it off.", frozenset({SERVE}),
           minimum=0),
    Option("mode", str, "ready", "Which health to probe: live, ready or startup.",
           frozenset({PROBE}), choices=TAGS),
    seconds("timeout", 3.0, "Total seconds the probe may take, counted from its start (the "
            "binary's own start-up, ~30 ms, comes before); it never overruns.",
            frozenset({PROBE}), minimum=0.1, maximum=60.0),
    Option("verbose", bool, False, "Print the URL, HTTP status, time, state age and one line "
           "per check.", frozenset({PROBE})),
    Option("json", bool, False, "Print the result as application/health+json.",
           frozenset({PROBE})),
    Option("url", str, "", "Probe this URL instead of the own service (skips the state "
           "snapshot); http:// only, no credentials; not with --mode or --uds.",
           frozenset({PROBE}), secret=True),
)

BY_NAME: dict[str, Option] = {o.name: o for o in OPTIONS}


def options_for(command: str) -> tuple[Option, ...]:
    """The options a command accepts, in definition order."""
    return tuple(o for o in OPTIONS if command == EVERY or command in o.commands)


class Settings:
    """Effective settings: one attribute per option (defaults live in OPTIONS), read-only, and
    `sources` saying where each value came from (file, env, flag; absent for a default)."""

    config: str
    host: str
    port: int
    uds: str
    state_dir: str
    reuse_port: bool
    drain_delay: float
    shutdown_timeout: float
    check_interval: float
    check_timeout: float
    heartbeat_max_age: float
    loop_lag_warn: float
    loop_lag_fail: float
    rss_warn_mb: int
    rss_fail_mb: int
    state_interval: float
    sweep_age: float
    log_level: str
    log_format: str
    access_log: bool
    target: tuple[Any, ...]
    target_interval: float
    target_timeout: float
    max_concurrency: int
    jitter: float
    redis_lag_warn: int
    redis_lag_fail: int
    mode: str
    timeout: float
    verbose: bool
    json: bool
    url: str
    sources: Mapping[str, str]

    def __init__(self, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)
        object.__setattr__(self, "sources", dict(sources))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"settings are read-only: {name}")

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{o.name}={getattr(self, o.name)!r}' for o in OPTIONS)})"

    def redacted(self) -> dict[str, Any]:
        """Settings as plain data with secrets (passwords in URLs) hidden."""
        out: dict[str, Any] = {}
        for option in OPTIONS:
            value = getattr(self, option.name)
            if option.secret and option.repeated:
                value = [redact_url(v) if isinstance(v, str) else _redact_table(v) for v in value]
            elif option.secret:
                value = redact_url(value)
            out[option.name] = value
        return out


def _redact_table(value: object) -> object:
    if isinstance(value, dict):
        return {k: redact_url(v) if k == "url" and isinstance(v, str) else v
                for k, v in value.items()}
    return value


_USERINFO = r"(?P<head>(?:[A-Za-z][A-Za-z0-9+.-]*)?://[^/@\s:'\"\[\]]*):\S*@"
"""`scheme://user:` up to the *last* `@` of the word: a password may hold a raw `@`, `/`, `#` or
`?` (an invalid URL, but one users write), and none of it may show."""
_PASSWORD_PARAM = r"(?i)(?P<head>[?&]password=)[^&\s,)\]'\"]*"  # noqa: S105 (a pattern)
"""`?password=` up to the next parameter, space, quote, bracket or comma: a comma ends it, since
in a target spec a comma separates keys (one inside the URL is written %2C)."""


_SECRETS: set[str] = set()


def add_secret(secret: str) -> None:
    """Have `redact_url` hide `secret` from now on (a password read from a file)."""
    _SECRETS.add(secret)


def redact_url(text: str) -> str:
    """Hide passwords in `scheme://user:password@host` and `?password=` found in text, and
    every secret given to `add_secret`."""
    import re  # here, not at the top: the probe never redacts and `re` would cost it ~2 ms

    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    # Parameters first: a `?password=` value holding an `@` must not pass for the end of a
    # userinfo.
    text = re.sub(_PASSWORD_PARAM, r"\g<head>***", text)
    return re.sub(_USERINFO, r"\g<head>:***@", text)


def _read_file(path: str, source: str) -> dict[str, Any]:
    import tomllib  # only when a file is given: it costs the probe ~5 ms

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("config", path, source, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("config", path, source, f"not UTF-8 text (byte "
                          f"{exc.object[exc.start]:#04x} at offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", path, source, f"invalid TOML: {exc}") from None
    return data


def _file_values(path: str, source: str) -> Iterable[tuple[Option, str, object]]:
    """(option, key as written, raw value) of each key of the file, refusing unknown keys and
    keys that name the same setting twice (`log_level` and `log-level`, `target` and
    `[[targets]]`): one of them would be dropped without a word."""
    seen: dict[str, str] = {}
    for key, raw in _read_file(path, source).items():
        name = key.replace("-", "_")
        if name == "targets":
            name = "target"
        if name not in BY_NAME or name == "config":
            raise ConfigError(key, raw, path, "unknown key; see `hc config --help`")
        if name in seen:
            raise ConfigError(key, raw, path, f"sets {name} again, as {seen[name]!r} does; "
                              "keep one of them")
        seen[name] = key
        yield BY_NAME[name], key, raw


def load(
    command: str,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings for `command` from defaults, file, env and flags (in that order).

    `flags` holds only options given on the command line (None values are ignored).
    Raises ConfigError with a one-line message on the first bad value.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    values: dict[str, Any] = {o.name: o.default for o in OPTIONS}
    sources: dict[str, str] = {}
    allowed = options_for(command)

    from_env = {o.name: found for o in allowed if (found := env_value(o, env)) is not None}
    config = BY_NAME["config"]
    config_path, config_source = flags.get("config"), f"flag {config.flag}"
    if not config_path:
        config_path, config_source = from_env.get("config", ("", ""))
    if config_path:
        sources["config"] = config_source
        for option, _, raw in _file_values(config_path, config_source):
            _set(values, sources, option, raw, f"file {config_path}")
    for name, (raw, source) in from_env.items():
        _set(values, sources, BY_NAME[name], raw, source)
    for name, raw in flags.items():
        _set(values, sources, BY_NAME[name], raw, f"flag {BY_NAME[name].flag}")
    settings = Settings(values, sources)
    _check_consistency(settings)
    return settings


def env_value(option: Option, env: Mapping[str, str]) -> tuple[str, str] | None:
    """The raw value of `option` in `env` and its source, or None when neither `HC_<NAME>` nor
    `HC_<NAME>_FILE` (a file holding the value; one trailing newline dropped) is set.

    Raises ConfigError naming the setting and the file, never its content, when the file cannot
    be read or both variables are set.
    """
    path = env.get(option.env_file, "")
    if not path:  # unset or empty: as the database images do, an empty one counts as unset
        return (env[option.env], f"env {option.env}") if option.env in env else None
    source = f"env {option.env_file}"
    if option.env in env:
        raise ConfigError(option.name, path, source,
                          f"{option.env} is set too; set one of them")
    try:
        return read_value(path), f"file {option.env_file}={path}"
    except ValueError as exc:
        raise ConfigError(option.name, path, source, str(exc)) from None


def read_value(path: str) -> str:
    """The value held by the file at `path` (a secret mounted as a file): UTF-8 text of at most
    FILE_LIMIT bytes, one trailing newline dropped. Raises ValueError saying why not in a few
    words, never quoting the content."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(FILE_LIMIT + 1)
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if len(data) > FILE_LIMIT:
        raise ValueError(f"larger than {FILE_LIMIT} bytes")
    try:
        return data.decode().removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


def _set(values: dict[str, Any], sources: dict[str, str], option: Option, raw: object,
         source: str) -> None:
    if option.repeated and source.startswith("flag") and not raw:
        return  # a repeatable flag given zero times
    try:
        values[option.name] = option.parse(raw, source)
    except ConfigError as exc:
        if not source.startswith(f"file {option.env_file}="):
            raise
        # The file may be a secret mounted under the wrong name: never quote its content.
        raise ConfigError(option.name, "(not shown)", source, exc.expected) from None
    sources[option.name] = source


def _check_consistency(settings: Settings) -> None:
    for warn, fail in (("loop_lag_warn", "loop_lag_fail"), ("rss_warn_mb", "rss_fail_mb")):
        low, high = getattr(settings, warn), getattr(settings, fail)
        if high and low > high:
            raise ConfigError(warn, low, settings.sources.get(warn, "default"),
                              f"must not exceed {fail}={high!r} (from "
                              f"{settings.sources.get(fail, 'default')})")


def parse_flags(argv: Sequence[str], command: str) -> dict[str, Any]:
    """The options of `command` given on a command line, as text for `load`, parsed from the
    option table without Typer: the fast path of `hc healthcheck` and services built on the kit.

    `--name value`, `--name=value`, `--flag` / `--no-flag` for booleans, repeatable options
    collected in a list. Raises UsageError (one line) on anything else.
    """
    by_flag = {o.flag: o for o in options_for(command)}
    flags: dict[str, Any] = {}
    words = iter(argv)
    for word in words:
        if not word.startswith("--"):
            raise UsageError(f"Got unexpected extra argument ({word})")
        name, has_value, value = word.partition("=")
        negated = name.startswith("--no-") and "--" + name[5:] in by_flag
        option = by_flag.get("--" + name[5:] if negated else name)
        if option is None or (negated and option.kind is not bool):
            raise UsageError(f"No such option: {name}")
        if option.kind is bool:
            if has_value:
                raise UsageError(f"Option '{name}' does not take a value.")
            flags[option.name] = not negated
            continue
        if not has_value:
            following = next(words, None)
            if following is None:
                raise UsageError(f"Option '{name}' requires an argument.")
            value = following
        if option.repeated:
            flags.setdefault(option.name, []).append(value)
        else:
            flags[option.name] = value
    return flags


def probe_address(host: str) -> str:
    """The address a local probe connects to for a listen address (wildcards to loopback)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(host, host)


def as_toml(settings: Settings) -> str:
    """The settings as lines a config file takes, `name = value  # where it came from`, with
    secrets hidden (`***`: put them back before use). `config` itself is a comment: it names
    the file and is not a key in it."""
    lines = []
    for name, value in settings.redacted().items():
        line = f"{name} = {_toml(value)}  # {settings.sources.get(name, 'default')}"
        lines.append(f"# {line}" if name == "config" else line)
    return "\n".join(lines)


def as_json(settings: Settings) -> str:
    """The settings as JSON, `{name: {"value": ..., "source": ...}}`, secrets hidden."""
    import json

    return json.dumps({name: {"value": value, "source": settings.sources.get(name, "default")}
                       for name, value in settings.redacted().items()}, indent=2)


def _toml(value: object) -> str:
    """A TOML value for the types settings hold (a JSON string is a valid TOML basic string)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_toml, value)) + "]"
    if isinstance(value, dict):
        pairs = (f"{k if _bare_key(k) else json.dumps(k)} = {_toml(v)}" for k, v in value.items())
        return "{" + ", ".join(pairs) + "}"
    return json.dumps(str(value))


def _bare_key(key: str) -> bool:
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)


def unknown_env(env: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each `HC_*` variable that names no setting, with the closest name that
    does: a misspelt variable (`HC_TARGETS`) would otherwise be ignored without a word.
    `HC_<NAME>_FILE` (a setting read from a file) counts as known."""
    import difflib

    env = os.environ if env is None else env
    known = [o.env for o in OPTIONS] + [o.env_file for o in OPTIONS]
    warnings = []
    for name in sorted(n for n in env if n.startswith("HC_") and n not in known):
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"unknown environment variable {name} ignored{hint}")
    return warnings
