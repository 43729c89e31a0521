"""Errors that the CLI turns into one clear line and a non-zero exit."""


class LbtError(Exception):
    """A user-facing error: bad input, a missing file, an unreachable server, ...

    The message must be one line that says what is wrong and what to do.
    """

    exit_code: int = 2
    label: str = "error"
    """The word the CLI's line starts with (``error: ...``)."""


class ConfigError(LbtError, ValueError):
    """The configuration (YAML, CLI flag or Python argument) is invalid."""


class DataError(LbtError, ValueError):
    """A data set is missing, empty or malformed."""


class EndpointError(LbtError):
    """A model endpoint cannot be reached or keeps failing."""

    exit_code = 3


class ServeError(LbtError):
    """Pulling or serving a model failed."""

    exit_code = 4
