from __future__ import annotations

import logging

from bot.logs import RedactSecrets


def test_known_secrets_and_token_shapes_are_scrubbed() -> None:
    scrub = RedactSecrets(["s3cret-password"]).scrub
    assert scrub("login with s3cret-password failed") == "login with *** failed"
    assert scrub("token xoxb-123-456-abc used") == "token *** used"
    assert (
        scrub("GET /hooks/avanser/call?uniqueid=1&token=abc123&x=2")
        == "GET /hooks/avanser/call?uniqueid=1&token=***&x=2"
    )
    assert scrub("https://user:pw@api.example/v1") == "https://***api.example/v1"
    assert scrub("Authorization: Basic dXNlcjpwdw==") == "Authorization: Basic ***"


def test_filter_rewrites_records_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "bad token %s", ("xoxb-1-2-3",), None)
    try:
        raise ValueError("password s3cret-password rejected")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    RedactSecrets(["s3cret-password"]).filter(record)
    assert record.getMessage() == "bad token ***"
    assert "s3cret-password" not in (record.exc_text or "")
