"""Why a TLS server refused this client: the reason the Kafka and Triton clients lose.

Under TLS 1.3 the server checks the client's certificate only after the client has sent its
last handshake message, so the client's handshake succeeds and the refusal (an alert:
"certificate required", "unknown ca") arrives at its first read. aiokafka reports that as
"connection closed" and gRPC as "Socket closed", which names neither TLS nor the
certificate. After such a failure, :func:`handshake_refusal` makes one connection of its
own with the same TLS settings and reads the alert (or sees the server hang up), so the
error can say what to fix.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

# Alerts that mean "your certificate": what the operator has to change, in words.
_CLIENT_CERTIFICATE_ALERTS = {
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "it requires a client certificate and none was presented",
    "TLSV1_ALERT_UNKNOWN_CA": "it does not trust the CA that signed the client certificate",
    "SSLV3_ALERT_BAD_CERTIFICATE": "it refused the client certificate",
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": "it refused the client certificate",
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": "the client certificate has expired",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": "it does not accept the client certificate's type or usage",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "the handshake failed (a client certificate may be required)",
}


def describe(exc: ssl.SSLError) -> str:
    """One line for a TLS error: what the server objected to, then OpenSSL's own words."""
    reason = str(exc.reason or "")
    words = exc.strerror or str(exc)
    meaning = _CLIENT_CERTIFICATE_ALERTS.get(reason)
    return f"TLS refused by the server: {meaning} ({words})" if meaning else f"TLS error: {words}"


def _reason(host: str, port: int, exc: ssl.SSLError, note: str) -> str:
    # The note on the client certificate only where the server objected to it (not, say,
    # where this client did not trust the server's certificate).
    about_client = str(exc.reason or "") in _CLIENT_CERTIFICATE_ALERTS
    return f"{host}:{port}: {describe(exc)}" + (f"; {note}" if about_client else "")


async def handshake_refusal(
    host: str,
    port: int,
    context: ssl.SSLContext,
    *,
    client_certificate: Path | None,
    wait_s: float = 5.0,
) -> str | None:
    """Why the server at ``host:port`` refuses a client with ``context`` (whose certificate,
    if any, is ``client_certificate``), or None when it does not, as far as one connection
    shows: the handshake and the first read raise no TLS error and the server does not hang
    up (the failure was something else, or the server is unreachable). ``wait_s`` bounds the
    connection and the read: a server that accepted the client may wait for its request."""
    note = (
        f"client certificate {client_certificate}"
        if client_certificate is not None
        else "no client certificate is configured"
    )
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host),
            wait_s,
        )
    except ssl.SSLError as exc:
        return _reason(host, port, exc, note)
    except (OSError, TimeoutError):
        return None
    try:
        first = await asyncio.wait_for(reader.read(1), wait_s)
    except ssl.SSLError as exc:
        return _reason(host, port, exc, note)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.transport.abort()  # no close_notify exchange: a refusing peer may never answer it
    if first:
        return None
    # gRPC servers hang up without an alert when they refuse a client certificate.
    return (
        f"{host}:{port} closed the connection right after the TLS handshake, without a reason: "
        f"it did not accept this client (a client certificate missing, or signed by a CA it does "
        f"not trust); {note}"
    )
