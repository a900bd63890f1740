"""Errors a user can act on. Their message is shown as is (CLI, API), so it says what to do."""

from __future__ import annotations


class R1AgentError(Exception):
    """Base class: anything the CLI prints as a one-line message with a non-zero exit."""

    exit_code = 1


class InputError(R1AgentError, ValueError):
    """The customer's turn or a command's arguments are unusable (empty, too long, wrong type)."""

    exit_code = 2


class NotFoundError(R1AgentError, LookupError):
    """A thread, ticket or file that does not exist."""

    exit_code = 3


class ConflictError(R1AgentError):
    """The request is valid but the thread is in the wrong state (e.g. waiting for a human)."""

    exit_code = 4


class ConfigurationError(R1AgentError):
    """Settings point at something unusable (a missing model folder, a bad taxonomy file)."""

    exit_code = 5
