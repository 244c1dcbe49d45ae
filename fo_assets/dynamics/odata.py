"""The HTTP side of F&O OData: one keep-alive client per environment, auth, retries, paging.

Every request draws a slot from the environment's shared throttle budget. Transient failures (429,
502/503/504, timeouts, dropped connections, a body cut mid-stream) are retried with exponential backoff
and jitter until a deadline; a 429 pauses the whole budget for its Retry-After. A 401 gets one new token
and one retry. The first request to an environment gets the long warm-up timeout (an AOS whose metadata
cache is cold takes 30 to 60 s to answer), later ones the normal timeout. The token is taken once the
request holds its slot, so no throttle pause ages it; a 401 on a token that expired meanwhile is an
expiry, answered with a new token, not a refusal.

Paging follows ``@odata.nextLink`` verbatim, but never to another scheme, host or port (the bearer
token would go with it) and never to a URL already followed (a loop would read forever).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from fo_assets.dynamics.auth import TokenProvider
from fo_assets.dynamics.errors import (
    AuthError,
    FoError,
    HttpError,
    PagingError,
    ThrottledError,
    TransportError,
    innermost_message,
)
from fo_assets.dynamics.throttle import Counters, Throttle
from fo_assets.settings import FoSettings

TRANSIENT_STATUS = frozenset({502, 503, 504})
# A 401 on a token already past its expiry is retried with a new one this many times per request.
MAX_EXPIRED_RETRIES = 5
_HEADERS = {"Accept": "application/json", "OData-Version": "4.0", "OData-MaxVersion": "4.0"}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long F&O requests are retried (429s wait for Retry-After instead)."""
    max_attempts: int = 6  # per request, for 5xx, timeouts and dropped connections (429s wait instead)
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 60.0
    default_retry_after_s: float = 30.0  # a 429 without Retry-After


@dataclass(frozen=True)
class ReadTarget:
    """What a request reads, for error messages."""

    entity_set: str | None = None
    company: str | None = None


class HasNextLink(Protocol):
    """Anything with the link to the next OData page."""
    @property
    def next_link(self) -> str | None:
        """The link to the next page, or None on the last one."""


T = TypeVar("T", bound=HasNextLink)

# One line per request, on a Python logger of its own rather than the run's: through Dagster's logger each
# line is an event-log write (a SQLite commit on the request thread, before its next request), which cost
# a 1,000,000-row backfill about 7 s and filled the event log with a row per page. Retries and 429s, which
# people need to see in the run's log, stay on the run's logger.
requests_log = logging.getLogger("fo_assets.requests")


class ODataClient:
    """HTTP to F&O's OData service: tokens, throttling, retries and errors that name the URL."""
    def __init__(
        self,
        fo: FoSettings,
        tokens: TokenProvider,
        budget: Throttle,
        policy: RetryPolicy | None = None,
        log: logging.Logger | None = None,
    ):
        self._fo = fo
        self._tokens = tokens
        self._budget = budget
        self._policy = policy or RetryPolicy()
        self._log = log or logging.getLogger(__name__)
        self._warm = False
        origin = urlsplit(fo.base_url)
        self._origin = (origin.scheme, origin.hostname, origin.port or 443)
        self._http = httpx.Client(
            verify=tls_context(fo),
            limits=httpx.Limits(max_connections=budget.max, max_keepalive_connections=budget.max),
            headers=_HEADERS,
            follow_redirects=False,  # a redirect would carry the bearer token somewhere unchecked
            timeout=fo.request_timeout_s,
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> ODataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self, url: str, target: ReadTarget, counters: Counters, deadline: float, accept: str | None = None
    ) -> bytearray:
        """The body of a 200 answer to ``url``, after retries; FoError subclasses otherwise."""
        attempt = expired = 0
        refreshed = False
        while True:
            ticket = self._budget.acquire(deadline)
            if ticket is None:
                raise ThrottledError("gave up waiting for the throttle budget: the deadline passed", **_at(target, url))
            # Taken now, not before the wait: a pause for a 429 can outlast a short-lived token.
            try:
                token = self._tokens.token()
            except FoError:
                self._budget.release(ok=False)
                raise
            timeout = self._fo.request_timeout_s if self._warm else self._fo.warmup_timeout_s
            counters.add(requests=1)
            started = time.monotonic()
            try:
                headers = {"Authorization": f"Bearer {token.value}", **({"Accept": accept} if accept else {})}
                response, body = self._fetch(url, headers, timeout)
            except httpx.HTTPError as error:
                self._budget.release(ok=False)
                failure = _transport_failure(error, url)
                if failure is not None:
                    raise TransportError(failure, **_at(target, url)) from None
                attempt += 1
                self._backoff(attempt, deadline, f"{type(error).__name__}: {error}", target, url, counters)
                continue
            status = response.status_code
            self._budget.release(ok=status < 400, nbytes=len(body))
            requests_log.debug("GET %s -> %s, %d bytes in %.2fs", url, status, len(body), time.monotonic() - started)
            if status == 200:
                self._warm = True
                counters.add(bytes=len(body))
                return body
            if status == 401 and token.expired() and expired < MAX_EXPIRED_RETRIES:
                # The token aged past its expiry on the way (a slow answer, a long queue): not a refusal.
                expired += 1
                self._tokens.invalidate(token.value)
                counters.add(retries=1)
                continue
            if status == 401 and not refreshed:
                refreshed = True
                self._tokens.invalidate(token.value)
                counters.add(retries=1)
                continue
            if status == 429:
                retry_after = response.headers.get("Retry-After")
                pause = self._budget.throttled(retry_after, self._policy.default_retry_after_s, ticket)
                counters.add(throttled=1, retries=1)
                if time.monotonic() + pause > deadline:
                    reason = _reason(response, body)
                    raise ThrottledError(f"still throttled (429) at the deadline: {reason}", **_at(target, url, 429))
                self._log.info("throttled (429) on %s: every request pauses %.1fs", url, pause)
                continue
            if status in TRANSIENT_STATUS:
                attempt += 1
                self._backoff(attempt, deadline, f"HTTP {status}: {_reason(response, body)}", target, url, counters)
                continue
            raise _http_error(response, body, target, url)

    def _fetch(self, url: str, headers: dict[str, str], timeout: float) -> tuple[httpx.Response, bytearray]:
        # The body grows in one buffer (a large realloc moves pages, not bytes): joining httpx's chunk
        # list would hold every page twice, and pages can be tens of MB.
        body = bytearray()
        with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
            for chunk in response.iter_bytes():
                body += chunk
        return response, body

    def pages(self, first_url: str, decode: Callable[[bytearray, str], T], target: ReadTarget, counters: Counters,
              deadline: float) -> Iterator[tuple[str, T]]:
        """(url, decoded page) for every page of a query, following nextLinks with the checks above."""
        followed = {first_url}
        url = first_url
        while True:
            page = decode(self.get(url, target, counters, deadline), url)
            counters.add(pages=1)
            yield url, page
            if not page.next_link:
                return
            following = urljoin(url, page.next_link)
            self._check_next_link(following, followed, target, url)
            followed.add(following)
            url = following

    def _check_next_link(self, link: str, followed: set[str], target: ReadTarget, url: str) -> None:
        parts = urlsplit(link)
        origin = (parts.scheme, parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        if origin != self._origin:
            raise PagingError(
                f"refusing @odata.nextLink to {parts.scheme}://{parts.netloc}: only {self._fo.base_url} is trusted "
                "with the token", **_at(target, url))
        if link in followed:
            raise PagingError(
                f"refusing @odata.nextLink {link}: it was already followed (a paging loop)", **_at(target, url)
            )

    def _backoff(self, attempt: int, deadline: float, what: str, target: ReadTarget, url: str, counters: Counters) -> None:
        policy = self._policy
        delay = min(policy.backoff_cap_s, policy.backoff_base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        if attempt >= policy.max_attempts or time.monotonic() + delay > deadline:
            raise TransportError(f"failed after {attempt} attempts, last: {what}", **_at(target, url))
        self._log.info("retrying %s in %.1fs after %s", url, delay, what)
        counters.add(retries=1)
        self._budget.retried()
        time.sleep(delay)


def tls_context(fo: FoSettings) -> ssl.SSLContext:
    """FO_CA_BUNDLE when set, else the system's trust store; verification is never turned off."""
    return ssl.create_default_context(cafile=str(fo.ca_bundle) if fo.ca_bundle else None)


def _at(target: ReadTarget, url: str, status: int | None = None) -> dict:
    return {"entity_set": target.entity_set, "company": target.company, "url": url, "status": status}


def _reason(response: httpx.Response, body: bytearray) -> str:
    return innermost_message(body) or response.reason_phrase or "no message"


def _transport_failure(error: httpx.HTTPError, url: str) -> str | None:
    """A message for failures no retry can fix (TLS trust), None for transient ones."""
    text = str(error)
    if isinstance(error, httpx.ConnectError) and ("CERTIFICATE_VERIFY_FAILED" in text or "certificate verify" in text):
        host = urlsplit(url).netloc
        return (f"TLS verification of {host} failed ({text}): if F&O is reached through a private CA, "
                "set FO_CA_BUNDLE to its PEM bundle")
    return None


def _http_error(response: httpx.Response, body: bytearray, target: ReadTarget, url: str) -> FoError:
    status = response.status_code
    reason = _reason(response, body)
    where = _at(target, url, status)
    if status == 401:
        return AuthError(
            f"F&O refused the token twice: {reason}. Likely causes: the token expired or was revoked, the tenant "
            "or audience is wrong (the scope must be exactly <FO_BASE_URL>/.default), or the app is not "
            "registered in F&O under System administration > Setup > Microsoft Entra applications", **where)
    if status == 403:
        return AuthError(f"F&O denied access: {reason}. Check the security roles of the user mapped to the "
                         "app under System administration > Setup > Microsoft Entra applications", **where)
    if status == 404 and target.entity_set:
        return HttpError(f"not found: {reason}. Entity set names are plural and case-sensitive "
                         "(CustomersV3, not CustomerV3 or customersv3)", **where)
    return HttpError(f"F&O answered {status}: {reason}", **where)
