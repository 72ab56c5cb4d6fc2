"""The one error type of the U-SQL compiler: where, which construct, and what went wrong."""

from __future__ import annotations


class UsqlError(Exception):
    """A problem in a U-SQL script, reported at a position in its source.

    Renders like a compiler diagnostic: ``script.usql:3:15: error: <construct>: <message>``.
    ``construct`` names the language element involved (``EXTRACT``, ``syntax``, ``column``, ...),
    so a caller can tell an unsupported construct from a typo without parsing the message.
    """

    def __init__(self, file: str, line: int, column: int, construct: str, message: str) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.construct = construct
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        """The diagnostic line, ``file:line:column: error: construct: message``."""
        return f"{self.file}:{self.line}:{self.column}: error: {self.construct}: {self.message}"

    def __str__(self) -> str:
        return self.render()
