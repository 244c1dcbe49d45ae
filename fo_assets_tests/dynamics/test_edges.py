"""What a misbehaving server can send, against a tiny scripted F&O over real HTTPS and the real msal."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from typing import Iterator

import pytest

from fo_assets.dynamics.extract import ExtractError, ExtractRequest, Extractor
from fo_assets.dynamics.odata import RetryPolicy
from fo_assets.settings import load_settings
from fo_assets_tests.support.truth import entity_rows
from fo_assets_tests.dynamics.tiny_fo import THINGS, TinyFo, page


@pytest.fixture
def tiny() -> Iterator[TinyFo]:
    with TinyFo() as server:
        yield server


def extract(tiny: TinyFo, tmp_path, log: logging.Logger | None = None):
    settings = load_settings({**tiny.env(), "FO_ASSETS_HOME": str(tmp_path)})
    with Extractor(settings, "run-edge", log=log, policy=RetryPolicy(backoff_base_s=0.01)) as extractor:
        return extractor.extract([ExtractRequest(THINGS)])


def failure(tiny: TinyFo, tmp_path) -> ExtractError:
    with pytest.raises(ExtractError) as raised:
        extract(tiny, tmp_path)
    (batch,) = raised.value.batches
    assert batch.manifest.status == "incomplete" and batch.manifest.delete_scopes == []
    return raised.value


def test_a_next_link_to_another_host_is_refused(tiny, tmp_path):
    tiny.pages["*"] = (200, page([{"Id": "a"}], "https://evil.example/data/Things?$skiptoken=1"), {})
    error = failure(tiny, tmp_path)
    assert "refusing @odata.nextLink to https://evil.example" in str(error) and "Things" in str(error)


def test_a_next_link_to_another_port_is_refused(tiny, tmp_path):
    tiny.pages["*"] = (200, page([{"Id": "a"}], "https://127.0.0.1:1/data/Things?$skiptoken=1"), {})
    assert "refusing @odata.nextLink to https://127.0.0.1:1" in str(failure(tiny, tmp_path))


def test_a_next_link_loop_is_refused(tiny, tmp_path):
    again = f"{tiny.base_url}/data/Things?$skiptoken=1"
    tiny.pages["*"] = (200, page([{"Id": "a"}], again), {})
    tiny.pages["$skiptoken=1"] = (200, page([{"Id": "b"}], again), {})
    assert "already followed (a paging loop)" in str(failure(tiny, tmp_path))
    assert len([r for r in tiny.requests if r.startswith("/data/Things?")]) == 2  # (and the $count)


def test_next_links_are_followed_verbatim(tiny, tmp_path):
    odd = f"{tiny.base_url}/data/Things?$skiptoken=a%2Bb%27c"
    tiny.pages["*"] = (200, page([{"Id": "a"}], odd), {})
    tiny.pages["$skiptoken=a%2Bb%27c"] = (200, page([{"Id": "b"}]), {})
    tiny.count = 2
    (batch,) = extract(tiny, tmp_path)
    assert [r["Id"] for r in entity_rows(batch)] == ["a", "b"]
    assert "/data/Things?$skiptoken=a%2Bb%27c" in tiny.requests


def test_fields_the_metadata_does_not_know_are_reported_and_refresh_the_cache(tiny, tmp_path, caplog):
    tiny.pages["*"] = (200, page([{"Id": "a", "Amount": 1, "Surprise": "new"}]), {})
    with caplog.at_level(logging.WARNING):
        (batch,) = extract(tiny, tmp_path)
    assert batch.manifest.status == "landed"
    assert batch.manifest.stats["unexpected_fields"] == ["Surprise"]
    assert any("Surprise" in r.getMessage() for r in caplog.records)
    assert not list((tmp_path / "metadata").glob("*/edmx*.json"))  # refetched on the next run


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"value": [{"Id": "a"}', "not valid JSON"),
        (b'{"error": "no value here"}', "no 'value' array"),
        (page([{"Id": "a"}, {"Amount": 2}]), "row 1 of the page has no value for key field 'Id'"),
        (page([{"Id": "a", "Amount": "lots"}]), "row 0, field Amount (decimal)"),
        (page([{"Id": "a", "Amount": 0.1234567}]), "more decimals than the metadata's scale 6"),
    ],
)
def test_a_malformed_page_fails_the_batch_with_what_was_wrong(tiny, tmp_path, body, expected):
    tiny.pages["*"] = (200, body, {})
    error = str(failure(tiny, tmp_path))
    assert expected in error and "Things" in error and f"{tiny.base_url}/data/Things?" in error


def test_retry_after_as_an_http_date_is_honoured(tiny, tmp_path):
    answers = [(429, b'{"error":{"code":"","message":"slow down"}}',
                {"Retry-After": email.utils.formatdate(time.time() + 2, usegmt=True)})]
    ok = (200, page([{"Id": "a", "Day": "2026-06-01T12:00:00Z"}]), {})
    tiny.pages["*"] = lambda: answers.pop() if answers else ok
    started = time.monotonic()
    (batch,) = extract(tiny, tmp_path)
    assert time.monotonic() - started >= 1.0
    assert batch.manifest.stats["throttled"] == 1
    assert [(r["Id"], str(r["Day"])) for r in entity_rows(batch)] == [("a", "2026-06-01")]


def test_the_innermost_server_message_is_reported(tiny, tmp_path):
    envelope = {"error": {"code": "", "message": "An error has occurred.", "innererror": {
        "message": "outer", "type": "X", "internalexception": {"message": "Cannot select field Bogus", "type": "Y"}}}}
    tiny.pages["*"] = (400, json.dumps(envelope).encode(), {})
    error = str(failure(tiny, tmp_path))
    assert "F&O answered 400: Cannot select field Bogus" in error


def test_a_token_refused_twice_fails_naming_the_likely_causes(tiny, tmp_path):
    tiny.pages["*"] = (401, b'{"error":{"code":"","message":"Unauthorized"}}', {})
    error = str(failure(tiny, tmp_path))
    assert "F&O refused the token twice" in error
    assert "System administration > Setup > Microsoft Entra applications" in error and "audience" in error
    assert len([r for r in tiny.requests if r.startswith("/data/Things")]) == 2  # one new token, one retry
