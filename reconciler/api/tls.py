"""A TLS failure, named as one. Why its own words: "cannot connect ... check that the service is
running" after seconds of retries sends people to the wrong place, and a retry never fixes a
certificate. This says which check failed and what to change (the CA, the host name, the clock
or the certificate), never "turn verification off"."""

from __future__ import annotations

import ssl

__all__ = ["tls_failure"]

_TRUST = ("point SSL_CERT_FILE at the PEM file of the CA that signed the server's certificate (or SSL_CERT_DIR at "
          "a directory of CA certificates); reconciler always verifies https endpoints")
_OTHER_HOST = ("use the endpoint's host name as its certificate names it (not an IP address or an alias), or have "
               "the certificate reissued with this name")
# OpenSSL's verify codes (X509_V_ERR_*): what each means for the person at the terminal
_BY_CODE = {
    18: ("the server's certificate is self-signed", _TRUST),
    19: ("the server's certificate chain ends in a self-signed CA this machine does not trust", _TRUST),
    20: ("the server's certificate is signed by a CA this machine does not trust (unable to get local issuer "
         "certificate)", _TRUST),
    21: ("the server sent an incomplete certificate chain", "the server must send its intermediate certificates; "
         "or " + _TRUST),
    9: ("the server's certificate is not valid yet", "check this machine's clock and the certificate's dates"),
    10: ("the server's certificate has expired", "renew the certificate on the server (or check this machine's "
          "clock)"),
    62: ("the certificate is for another host name", _OTHER_HOST),
    64: ("the certificate is for another host name (it does not name this IP address)", _OTHER_HOST),
}


def tls_failure(exc: BaseException) -> str | None:
    """What failed in TLS, with the fix, if ``exc`` (an httpx connect error) was caused by TLS; else None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            code = getattr(current, "verify_code", None)
            said = getattr(current, "verify_message", None) or current.reason or "certificate verify failed"
            what, fix = _BY_CODE.get(code if isinstance(code, int) else -1, (
                "the server's certificate could not be verified", _TRUST))
            return f"certificate verify failed: {what} ({said}); {fix}"
        if isinstance(current, ssl.SSLError):
            reason = current.reason or type(current).__name__
            return (f"the TLS handshake failed ({reason}); check that the endpoint speaks https on this port "
                    "(not plain http) and that its certificate and TLS versions are ones this machine accepts")
        current = current.__cause__ or current.__context__
    return None
