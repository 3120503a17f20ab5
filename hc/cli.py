"""The Typer app: `hc serve`, `hc healthcheck`, `hc config`, `hc --version`.

Options are generated from `hc.config.OPTIONS`, the same table the probe's fast path parses, so
a flag, its env variable, its default and its help text are each written once. Flag values reach
the config loader as text: one validator, one wording of errors, whatever the source.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from hc import __version__, exits, state
from hc.config import (
    EVERY,
    FILE_SUFFIX,
    PROBE,
    SERVE,
    ConfigError,
    Option,
    UsageError,
    as_json,
    as_toml,
    load,
    options_for,
    unknown_env,
)

EXIT_CODES = f"""
Exit codes: serve {exits.OK} clean stop, {exits.FAILURE} runtime failure, {exits.USAGE} bad
command line, {exits.CONFIG} bad config. healthcheck {exits.OK} healthy, {exits.FAILURE}
unhealthy for any reason (never {exits.USAGE}: Docker reserves it).
"""

SETTINGS = f"""
Every option is also read from the environment: HC_<NAME>, or HC_<NAME>{FILE_SUFFIX} naming a
file that holds the value (a secret mounted as a file; one trailing newline is dropped).
Precedence: defaults < TOML file of --config < environment < flags.
"""

PROBE_HELP = (f"Probe the own service's port and state; exit {exits.OK} healthy, {exits.FAILURE} "
              "unhealthy (for any reason). For Docker HEALTHCHECK and exec probes.")

app = typer.Typer(
    name="hc",
    help="Run a service and health-check it from inside a FROM scratch image." + SETTINGS
    + EXIT_CODES,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_METAVARS = {int: "INTEGER", float: "NUMBER", str: "TEXT", bool: ""}


def _help(option: Option) -> str:
    default = option.default if option.default not in ("", ()) else "none"
    return f"{option.help} [env: {option.env}; default: {default}]"


def _parameter(option: Option) -> inspect.Parameter:
    info: Any
    if option.kind is bool:
        kind: Any = bool | None
        info = typer.Option(f"{option.flag}/--no-{option.flag[2:]}", help=_help(option),
                            show_default=False)
    elif option.repeated:
        kind = list[str] | None
        info = typer.Option(option.flag, help=_help(option), show_default=False,
                            metavar="URL")
    else:
        kind = str | None
        metavar = "|".join(option.choices) if option.choices else _METAVARS[option.kind]
        info = typer.Option(option.flag, help=_help(option), show_default=False,
                            metavar=metavar)
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind, info])


def _command(command: str, body: Callable[[dict[str, Any]], int],
             extra: tuple[inspect.Parameter, ...] = ()) -> Callable[..., None]:
    """A Typer command whose parameters are the options of `command` (minus those an `extra`
    parameter of the same name replaces)."""
    def handler(**flags: Any) -> None:
        code = body({k: v for k, v in flags.items() if v is not None})
        if code:
            raise typer.Exit(code)

    replaced = {p.name for p in extra}
    parameters = [_parameter(o) for o in options_for(command) if o.name not in replaced]
    parameters += extra
    handler.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    handler.__annotations__ = {p.name: p.annotation for p in parameters}
    return handler


def _fail(command: str, message: str, code: int) -> int:
    sys.stderr.write(f"hc {command}: {message}\n")
    return code


def _warn_unknown_env(command: str) -> None:
    for warning in unknown_env():
        sys.stderr.write(f"hc {command}: warning: {warning}\n")


def _serve(flags: dict[str, Any]) -> int:
    try:
        settings = load(SERVE, flags)
    except ConfigError as exc:
        return _fail("serve", f"config error: {exc}", exits.CONFIG)
    _warn_unknown_env("serve")
    # Imported here, not at the top: `hc config`, `--version` and `--help` need none of uvicorn.
    from hc import service
    from hc.server import ListenError

    try:
        return service.run(settings)
    except (ConfigError, state.StateError) as exc:  # ConfigError: a malformed target
        return _fail("serve", f"config error: {exc}", exits.CONFIG)
    except ListenError as exc:
        return _fail("serve", str(exc), exits.FAILURE)


def _healthcheck(flags: dict[str, Any]) -> int:
    from hc import probe

    try:
        settings = load(PROBE, flags)
        probe.check_usage(settings)
    except UsageError as exc:
        return _fail("healthcheck", f"{exc} (see hc healthcheck --help)", exits.FAILURE)
    except ConfigError as exc:
        return _fail("healthcheck", f"config error: {exc}", exits.FAILURE)
    return probe.run(settings)


def _config(flags: dict[str, Any]) -> int:
    # `--json` of `hc config` picks the output format; the probe's json setting still comes
    # from HC_JSON or the file.
    output = as_json if flags.pop("json", False) else as_toml
    # The targets are parsed as `hc serve` parses them, so a spec serve refuses is refused here.
    from hc.watcher import parse_targets

    try:
        settings = load(EVERY, flags)
        parse_targets(settings)
    except ConfigError as exc:
        return _fail("config", f"config error: {exc}", exits.CONFIG)
    _warn_unknown_env("config")
    print(output(settings))
    return exits.OK


CONFIG_FORMAT = inspect.Parameter(
    "json", inspect.Parameter.KEYWORD_ONLY, default=None,
    annotation=Annotated[bool | None, typer.Option(
        "--json", help="Print JSON ({name: {value, source}}) instead of TOML lines.",
        show_default=False)])


class ProbeCommand(TyperCommand):
    """`healthcheck` through Typer: bad usage exits 1 like the fast path, never 2."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:
            if getattr(exc, "exit_code", None) != exits.USAGE:
                raise
            _fail("healthcheck", exc.format_message(), exits.FAILURE)
            raise typer.Exit(exits.FAILURE) from None


def add_healthcheck(target: typer.Typer, name: str = "healthcheck") -> None:
    """Give another Typer app hc's `healthcheck` command (same options, same exit codes)."""
    target.command(name, cls=ProbeCommand, help=PROBE_HELP, epilog=SETTINGS)(
        _command(PROBE, _healthcheck))


app.command("serve", help="Run the dependency watcher with /livez /readyz /healthz /metrics."
            f" Exits {exits.OK} on SIGTERM/SIGINT after draining, {exits.CONFIG} on bad "
            "config.", epilog=SETTINGS)(_command(SERVE, _serve))
add_healthcheck(app)
app.command("config", help="Print the effective settings as TOML lines for the file given by "
            "--config, each with where it came from (secrets hidden as ***); --json for "
            "JSON.")(_command(EVERY, _config, (CONFIG_FORMAT,)))


def _version(value: bool) -> None:
    if value:
        print(f"hc {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Run a service and health-check it from inside a FROM scratch image."""


def _command_name(ctx: Any) -> str:
    """`hc <command>` of a usage error: from Click's context when it has the subcommand's, else
    from the command line (Click reports a flag's missing value with no context)."""
    if ctx is not None and ctx.parent is not None:
        return f"hc {ctx.info_name}"
    commands = {command.name for command in app.registered_commands}
    named = next((word for word in sys.argv[1:] if word in commands), None)
    return f"hc {named}" if named else "hc"


def run() -> None:
    """Run the app; a bad command line gets one line on stderr (not Click's usage block)."""
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as exc:  # Typer's Click errors: a bad flag, a missing command
        message = exc.format_message()
        if "\n" in message:  # the help page, for a bare `hc`
            sys.stderr.write(message + "\n")
        else:
            command = _command_name(getattr(exc, "ctx", None))
            sys.stderr.write(f"{command}: {message.rstrip('.')} (see {command} --help)\n")
        code = exc.exit_code
    sys.exit(code)
