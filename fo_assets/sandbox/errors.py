"""Error bodies shaped like the real services: the F&O OData envelope and Entra's token errors."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson


def odata_error(message: str, kind: str, outer: str = "The query specified in the URI is not valid.") -> bytes:
    """F&O's envelope: a generic outer message, the useful cause innermost."""
    return orjson.dumps(
        {
            "error": {
                "code": "",
                "message": "An error has occurred.",
                "innererror": {
                    "message": outer,
                    "type": "Microsoft.OData.ODataException",
                    "stacktrace": "",
                    "internalexception": {"message": message, "type": kind, "stacktrace": ""},
                },
            }
        }
    )


def not_found(url: str) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "code": "",
                "message": f"No HTTP resource was found that matches the request URI '{url}'.",
                "innererror": {"message": "No route data was found for this request.", "type": "", "stacktrace": ""},
            }
        }
    )


ENTRA_ERRORS: dict[int, tuple[int, str, str]] = {
    7000215: (
        401,
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is "
        "the client secret value, not the client secret ID, for a secret added to app '{client}'.",
    ),
    700016: (
        400,
        "unauthorized_client",
        "Application with identifier '{client}' was not found in the directory "
        "'{tenant}'. This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant.",
    ),
    90002: (
        400,
        "invalid_request",
        "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
        "and are signing into the correct cloud.",
    ),
    500011: (
        400,
        "invalid_resource",
        "The resource principal named {scope} was not found in the tenant named "
        "{tenant}. This can happen if the application has not been installed by the administrator of the "
        "tenant or consented to by any user in the tenant. You might have sent your authentication request "
        "to the wrong tenant.",
    ),
    70003: (400, "unsupported_grant_type", "The app requested an unsupported grant type '{grant}'."),
}


def entra_error(code: int, **params: str) -> tuple[int, bytes]:
    status, error, template = ENTRA_ERRORS[code]
    now = dt.datetime.now(dt.UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    description = (
        f"AADSTS{code}: {template.format(**params)}\r\nTrace ID: {trace}\r\n"
        f"Correlation ID: {correlation}\r\nTimestamp: {now:%Y-%m-%d %H:%M:%SZ}"
    )
    return status, orjson.dumps(
        {
            "error": error,
            "error_description": description,
            "error_codes": [code],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }
    )
