"""PII masking for logs: every log record of the process, whoever logs it and wherever it goes.

A ``logging.Filter`` only sees the records of the logger or handler it is attached to, and handlers
come and go (the LangGraph server adds its own). The record factory sees every record as it is made,
so masking there covers them all; :class:`PiiLogFilter` is the same masking for a logging config that
wants it explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from r1agent.privacy import mask_pii, mask_value

WITHHELD = "[log message withheld: it could not be checked for personal data]"
_FORMATTER = logging.Formatter()
_lock = threading.Lock()


def mask_record(record: logging.LogRecord) -> None:
    """Masks a record in place: its message (formatted now, so arguments are masked in context), its
    traceback and its stack. If that fails the message is withheld: never leak to keep a line."""
    try:
        if isinstance(record.msg, str):
            record.msg = mask_pii(record.getMessage())
            record.args = ()
        else:  # structured messages (structlog's event dicts) keep their shape
            record.msg = mask_value(record.msg)
            record.args = mask_value(record.args) if record.args else record.args
        if record.exc_info and not record.exc_text:
            record.exc_text = mask_pii(_FORMATTER.formatException(record.exc_info))
        # Formatters that render exc_info themselves (rich, structlog) would bypass the masked text.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
    except Exception:  # noqa: BLE001 - a record that cannot be masked is withheld, never dropped silently
        record.msg, record.args, record.exc_info, record.exc_text = WITHHELD, (), None, None


class PiiLogFilter(logging.Filter):
    """Masks PII in each record it sees (attach to a handler to cover everything that handler writes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


class _MaskingFactory:
    def __init__(self, previous: Callable[..., logging.LogRecord]) -> None:
        self.previous = previous

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.previous(*args, **kwargs)
        mask_record(record)
        return record


def install_log_masking() -> None:
    """Masks every log record made from now on in this process (idempotent)."""
    with _lock:
        current = logging.getLogRecordFactory()
        if not isinstance(current, _MaskingFactory):
            logging.setLogRecordFactory(_MaskingFactory(current))


def uninstall_log_masking() -> None:
    with _lock:
        current = logging.getLogRecordFactory()
        if isinstance(current, _MaskingFactory):
            logging.setLogRecordFactory(current.previous)
