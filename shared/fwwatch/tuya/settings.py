"""One way to declare and read settings: a pydantic model whose fields are environment variables.

A model derives each field's variable from a prefix, ``model_config = env_prefix("TUYA_")``
(the field ``qps`` is ``TUYA_QPS``; without a prefix, ``check_queue_url`` is
``CHECK_QUEUE_URL``), unless the field names its own:
``Field(validation_alias="SMTP_HOST")``. ``Model.load(environ)`` reads exactly those
variables (an empty one counts as unset), validates them once, and turns any problem, a
field's or a cross-field validator's, into one :class:`ConfigError` whose message names
the variable and never repeats a value. Building a model from arguments fails the same way.

A secret (a field typed ``SecretStr``, or ``SecretStr | None``) can come from a file
instead: ``SMTP_PASSWORD_FILE=/run/secrets/smtp`` reads the value from that file, as
Docker and systemd credentials hand secrets over. Setting both ``SMTP_PASSWORD`` and
``SMTP_PASSWORD_FILE`` is an error naming both.

Help comes from the fields: :func:`environment_help` lists each variable with its
``description``, its default (or ``json_schema_extra={"help_default": "8 MiB"}`` when the
value itself would read badly) and, for a ``SecretStr``, that it is never printed and
which variable names its file.

This module is part of the ground floor: it imports nothing else of fwwatch.
"""

from __future__ import annotations

import ipaddress
import os
import textwrap
from collections.abc import Mapping
from typing import Any, ClassVar, Self, get_args

from pydantic import AliasGenerator, BaseModel, ConfigDict, SecretStr, ValidationError
from pydantic.fields import FieldInfo

__all__ = [
    "HELP_DEFAULT",
    "ConfigError",
    "EnvSettings",
    "env_prefix",
    "environment_help",
    "is_loopback_host",
    "read_secret_file",
]

#: The ``json_schema_extra`` key of a default as help should show it.
HELP_DEFAULT = "help_default"

#: What a secret's variable gets to name a file holding the secret instead.
SECRET_FILE_SUFFIX = "_FILE"  # noqa: S105 (a suffix of variable names, not a password)
#: A secret file larger than this is not a secret but a mistake (a wrong path, say).
MAX_SECRET_FILE_BYTES = 64 * 1024


class ConfigError(ValueError):
    """Configuration that cannot work; the message names the variable, never its value."""


def env_prefix(prefix: str) -> ConfigDict:
    """The model configuration that names each field's variable ``prefix + FIELD_NAME``."""
    return ConfigDict(alias_generator=_variables_named(prefix))


def _variables_named(prefix: str) -> AliasGenerator:
    # Validation aliases only: a model dumps (and prints) under its field names.
    return AliasGenerator(validation_alias=lambda name: prefix + name.upper())


class EnvSettings(BaseModel):
    """Base of every settings model: frozen, read from variables, one error type.

    Build one with :meth:`load` (from the environment) or with arguments by field name;
    both raise :attr:`config_error`, whatever the problem.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        # By variable from the environment, by field name from code (``TuyaSettings(qps=5)``).
        validate_by_alias=True,
        validate_by_name=True,
        alias_generator=_variables_named(""),
    )

    #: What a model raises for bad configuration (a subclass of :class:`ConfigError`).
    config_error: ClassVar[type[ConfigError]] = ConfigError

    def __init__(self, **values: Any) -> None:
        """Validate ``values`` (by field name or variable), or raise :attr:`config_error`."""
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise type(self).config_error(type(self).describe(exc)) from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Each field's environment variable, by field name, in declaration order."""
        return {name: _variable(name, field) for name, field in cls.model_fields.items()}

    @classmethod
    def secret_file_variables(cls) -> dict[str, str]:
        """Each secret field's ``<VARIABLE>_FILE``, by field name, in declaration order."""
        variables = cls.variables()
        return {
            name: variables[name] + SECRET_FILE_SUFFIX
            for name, field in cls.model_fields.items()
            if _is_secret(field)
        }

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read the model's variables from ``environ`` (the process's by default) and validate.

        Values are stripped, and a variable that is empty counts as unset, as in a ``.env``
        file with ``NAME=``. A secret may come from the file its ``<VARIABLE>_FILE`` names
        instead (its content, trailing newlines stripped). Raises :attr:`config_error`
        naming every variable that is wrong.
        """
        source = os.environ if environ is None else environ
        values = {
            variable: source[variable].strip()
            for variable in cls.variables().values()
            if source.get(variable, "").strip()
        }
        problems = []
        variables = cls.variables()
        for name, file_variable in cls.secret_file_variables().items():
            path = source.get(file_variable, "").strip()
            if not path:
                continue
            variable = variables[name]
            if variable in values:
                problems.append(f"{variable} and {file_variable} are both set; set only one")
                continue
            try:
                values[variable] = read_secret_file(path, file_variable)
            except ConfigError as exc:
                problems.append(str(exc))
        if problems:
            raise cls.config_error("; ".join(problems))
        # Not model_validate: pydantic runs an overridden __init__ inside its own validation,
        # and would wrap config_error in a ValidationError.
        return cls(**values)

    @classmethod
    def describe(cls, exc: ValidationError) -> str:
        """One clause per problem, naming its variable; inputs are left out (they may be secret)."""
        variables = cls.variables()
        problems = []
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            message = str(error["msg"])
            for pydantic_prefix in ("Value error, ", "Assertion failed, "):
                message = message.removeprefix(pydantic_prefix)
            if not error["loc"]:
                # A cross-field validator: its message names the variables itself.
                problems.append(message)
                continue
            # The variable when read from the environment, the field name when from code.
            head = str(error["loc"][0])
            variable = variables.get(head, head)
            if error["type"] == "missing":
                problems.append(f"{variable} is not set")
            elif message.startswith(variable):
                problems.append(message)
            else:
                problems.append(f"{variable}: {_lower_first(message)}")
        return "; ".join(problems)


def environment_help(model: type[EnvSettings], title: str, *, width: int = 88) -> str:
    """``title:`` and one entry per variable of ``model``, for an argparse epilog.

    Each entry is the variable's name, then its field's description, its default and, for
    a secret, that it is never printed and may come from ``<VARIABLE>_FILE``, wrapped to
    ``width`` columns under the description.
    """
    variables = model.variables()
    column = min(max(len(name) for name in variables.values()) + 2, 24)
    lines = [f"{title}:"]
    for name, field in model.model_fields.items():
        variable = variables[name]
        text = field.description or ""
        default = _shown_default(field)
        if default is not None:
            text += f" (default {default})"
        if _is_secret(field):
            text += f" (never printed; or {variable}{SECRET_FILE_SUFFIX}: a file holding it)"
        head = f"  {variable}".ljust(column + 2)
        if len(variable) >= column:
            lines.append(f"  {variable}")
            head = " " * (column + 2)
        lines.extend(
            textwrap.wrap(
                text, width=width, initial_indent=head, subsequent_indent=" " * (column + 2)
            )
        )
    return "\n".join(lines) + "\n"


def read_secret_file(path: str, variable: str) -> str:
    """The secret in the file at ``path``, named by ``variable``: its text, without the
    trailing newline an editor or ``echo`` adds, nor a leading byte order mark.

    Raises :class:`ConfigError` naming the variable and the path, never the content.
    """
    try:
        raw = _read_at_most(path, MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"{variable}: cannot read {path} ({reason}); give the path of a readable file "
            "holding the secret"
        ) from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ConfigError(
            f"{variable}: {path} is larger than {MAX_SECRET_FILE_BYTES // 1024} KiB; "
            "it should hold the secret alone"
        )
    try:
        # utf-8-sig: a byte order mark some editors start a file with is no part of it.
        text = raw.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{variable}: {path} is not UTF-8 text") from None
    if not text.strip():
        raise ConfigError(f"{variable}: {path} is empty; it should hold the secret")
    return text


def _read_at_most(path: str, size: int) -> bytes:
    """Up to ``size`` bytes of the file at ``path``, without waiting for a writer to a FIFO.

    A plain open() of a named pipe waits, forever, until some process opens it to write: a
    FIFO named by mistake would hang fwwatch before it says a word. Opened without waiting,
    a FIFO that no one writes to reads empty (and is refused as such), while a pipe that has
    a writer, as with ``SMTP_PASSWORD_FILE=<(pass show smtp)``, is read whole, blocking.
    """
    no_wait = getattr(os, "O_NONBLOCK", 0)  # POSIX; Windows has no FIFO to wait for
    descriptor = os.open(path, os.O_RDONLY | no_wait)
    try:
        if no_wait:
            os.set_blocking(descriptor, True)
        chunks: list[bytes] = []
        while size > 0 and (chunk := os.read(descriptor, size)):
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1).

    The one rule for plain-text connections that carry a credential (a Tuya endpoint, a
    Slack webhook, an SMTP password): they are allowed to this machine only.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _variable(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    if not isinstance(alias, str):
        raise TypeError(f"settings field {name!r} needs one variable name, not {alias!r}")
    return alias


def _shown_default(field: FieldInfo) -> str | None:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and HELP_DEFAULT in extra:
        return str(extra[HELP_DEFAULT])
    if field.is_required() or field.default_factory is not None:
        return None
    default = field.default
    if default is None or default in ((), ""):
        return None  # the description says what unset means
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


def _lower_first(message: str) -> str:
    # "Input should be..." reads on after a colon; an acronym ("URL must...") stays as it is.
    if message[:1].isupper() and message[1:2].islower():
        return message[0].lower() + message[1:]
    return message
