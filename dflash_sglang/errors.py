"""The one exception type that reaches a user as a one-line message (CLI, start-up checks)."""


class UserError(Exception):
    """A problem the user can fix: bad input, a missing tool, an unsupported version.

    The CLI prints `dflash-sglang: error: <message>` and exits 2, never a traceback.
    """
