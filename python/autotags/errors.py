"""The one base of every error autotags expects: a file it cannot read, a setting it does
not accept, a database it must not touch. Anything else that escapes is a bug.

Each error also keeps the built-in base it had before this one existed (``ValueError``
for what the caller got wrong, ``RuntimeError`` for what the machine or a file got wrong),
so that code catching those still works.
"""

from __future__ import annotations


class AutotagsError(Exception):
    """An expected failure, with a message meant for the person running autotags."""


class SettingsError(AutotagsError, ValueError):
    """A value given to autotags is not one it accepts (a mode, a policy, an address)."""
