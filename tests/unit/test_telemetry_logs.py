"""Log records are masked wherever they come from and wherever they go."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from r1agent.settings import Settings
from r1agent.telemetry import PiiLogFilter, install_log_masking, setup_telemetry, uninstall_log_masking
from r1agent.telemetry.logs import WITHHELD, mask_record


@pytest.fixture
def masking() -> Iterator[None]:
    before = logging.getLogRecordFactory()
    install_log_masking()
    yield
    uninstall_log_masking()
    logging.setLogRecordFactory(before)


def test_messages_and_their_arguments_are_masked(masking: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("some.library")  # not r1agent's: every logger is covered
    with caplog.at_level(logging.INFO):
        log.info("lookup for %s (card %s)", "a.b@example.com", "4111 1111 1111 1111")
        log.info({"event": "moved", "to": "986 Sunset Drive"})  # structlog-style: the shape is kept
    first, second = caplog.records
    assert first.getMessage() == "lookup for [EMAIL] (card [CARD])"
    assert second.msg == {"event": "moved", "to": "[ADDRESS]"}
    assert "a.b@example.com" not in caplog.text and "4111" not in caplog.text


def test_tracebacks_are_masked(masking: None) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("r1agent.test.tracebacks")
    log.addHandler(handler)
    try:
        try:
            raise ValueError("no account for a.b@example.com")
        except ValueError:
            log.exception("lookup failed")
    finally:
        log.removeHandler(handler)
    written = stream.getvalue()
    assert "lookup failed" in written and "ValueError: no account for [EMAIL]" in written
    assert "a.b@example.com" not in written


def test_install_is_idempotent(masking: None) -> None:
    factory = logging.getLogRecordFactory()
    install_log_masking()
    assert logging.getLogRecordFactory() is factory


def test_setup_telemetry_masks_logs_even_with_no_exporter() -> None:
    before = logging.getLogRecordFactory()
    try:
        setup_telemetry(Settings(otel_exporter=["none"]))
        record = logging.getLogger("x").makeRecord("x", logging.INFO, "f", 1, "call +1 555 123 4567", (), None)
        assert record.getMessage() == "call [PHONE]"
    finally:
        uninstall_log_masking()
        logging.setLogRecordFactory(before)


def test_opting_out_leaves_logs_alone() -> None:
    before = logging.getLogRecordFactory()
    setup_telemetry(Settings(otel_exporter=["none"], mask_pii_in_logs=False))
    assert logging.getLogRecordFactory() is before


def test_the_filter_masks_what_its_handler_writes() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "mail %s", ("a.b@example.com",), None)
    assert PiiLogFilter().filter(record) is True
    assert record.getMessage() == "mail [EMAIL]"


def test_a_record_that_cannot_be_masked_is_withheld() -> None:
    record = logging.LogRecord("x", logging.INFO, "f", 1, "%s and %s", ("only one",), None)
    mask_record(record)
    assert record.getMessage() == WITHHELD
