"""Logging: the redaction safety net."""

from __future__ import annotations

import logging

import pytest

from carewire import log as cw_log


def test_bodies_and_secrets_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("carewire.test")
    logger.addFilter(cw_log.RedactingFilter())
    with caplog.at_level(logging.INFO, logger="carewire.test"):
        logger.info("stanza %s", "<message><body>patient in bed 4</body></message>")
        logger.info("login password=hunter2 token: abc123")
        logger.info("nothing to hide %d", 42)
    text = caplog.text
    assert "patient in bed 4" not in text and "<body>[redacted]</body>" in text
    assert "hunter2" not in text and "abc123" not in text
    assert "nothing to hide 42" in text


def test_connection_id_in_records() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    token = cw_log.connection_id.set("c42")
    try:
        assert cw_log.ContextFilter().filter(record)
        assert getattr(record, "conn", None) == "c42"
    finally:
        cw_log.connection_id.reset(token)


def test_setup_installs_one_redacting_handler() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        cw_log.setup("warning")
        assert root.level == logging.WARNING and len(root.handlers) == 1
        assert any(isinstance(f, cw_log.RedactingFilter) for f in root.handlers[0].filters)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize(
    "hostile",
    [
        "alice\n2026-01-01 00:00:00 INFO    [-] carewire: admin signed in",
        "alice\r\nforged",
        "alice\rforged",
        "alice\x1b[2Kforged",
        "alice\u2028forged",
        "alice\x85forged",
        "alice\x00forged",
    ],
)
def test_control_characters_cannot_forge_a_line(hostile: str) -> None:
    import io

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(cw_log.RedactingFilter())
    logger = logging.getLogger("carewire.test.forge")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("authentication failed for %s", hostile)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    line = text[:-1]
    assert line.isprintable(), line
    assert line.startswith("WARNING authentication failed for alice\\")
    assert "forged" in line or "admin signed in" in line


def test_escape_controls_keeps_ordinary_text() -> None:
    assert cw_log.escape_controls("Zoë O'Neil <b> é 😀 tab") == "Zoë O'Neil <b> é 😀 tab"
    assert cw_log.escape_controls("a\tb\nc") == "a\\tb\\nc"


def test_json_format_is_one_object_per_line_with_the_redacted_message() -> None:
    import io
    import json

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        cw_log.setup("info", "json")
        stream = io.StringIO()
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        token = cw_log.connection_id.set("c7")
        try:
            logging.getLogger("carewire.json").info("login password=%s\nnext", "hunter2")
        finally:
            cw_log.connection_id.reset(token)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("carewire.json").exception("failed")
        lines = stream.getvalue().splitlines()
        first, second = (json.loads(x) for x in lines[:2]) if len(lines) == 2 else ({}, {})
        assert len(lines) == 2, lines
        assert first["level"] == "info" and first["logger"] == "carewire.json"
        assert first["connection"] == "c7" and first["time"].endswith("+00:00")
        assert "hunter2" not in lines[0] and "[redacted]" in first["message"]
        assert second["level"] == "error" and "ValueError: boom" in second["exception"]
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
