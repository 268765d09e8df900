"""Errors that the command line turns into a clear message and exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: a file, a line, a key or an option that is wrong.

    The message says what was wrong, where, and what would be right.
    """
