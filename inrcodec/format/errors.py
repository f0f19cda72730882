"""The one exception a malformed ``.inr`` file may raise."""


class FormatError(ValueError):
    """The bytes are not a valid ``.inr`` file of a supported version (message says why)."""
