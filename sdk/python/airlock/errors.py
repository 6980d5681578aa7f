"""Typed errors raised by the Airlock SDK.

Every failure the SDK reports is an ``AirlockError``: API errors carry the HTTP
``status`` and the API's ``code`` and ``message`` (docs/api.md, "Errors"); a
daemon that cannot be reached is an ``AirlockConnectionError``.  No bare
urllib / http.client / socket exception leaves the SDK.
"""


class AirlockError(Exception):
    """Base class of every SDK error."""

    def __init__(self, message, status=None, code=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def __str__(self):
        if self.code:
            return "%s (%s)" % (self.message, self.code)
        return self.message

    def __repr__(self):
        return "%s(status=%r, code=%r, message=%r)" % (
            type(self).__name__, self.status, self.code, self.message)


class AirlockConnectionError(AirlockError, ConnectionError):
    """The daemon could not be reached, or the connection broke mid-request."""


class TransferError(AirlockConnectionError):
    """A transfer that did not arrive whole: a download shorter than its
    Content-Length, or a streamed run whose stream ended without its
    terminal event (``exit`` or ``error``): the connection was cut (the
    daemon died, the sandbox expired mid-transfer, a network failure).
    Nothing was written where the whole content was asked for (see
    ``Sandbox.download``)."""


class IntegrityError(TransferError):
    """The bytes do not have the sha256 they were sent with: a download
    whose content differs from its ``X-Content-SHA256``, or an upload the
    agent refused (400 ``digest_mismatch``: nothing was written)."""


class AuthError(AirlockError):
    """401 unauthorized (missing, unknown or revoked key) or 403 forbidden."""


class NotFound(AirlockError):
    """404: unknown sandbox, file, key or route."""


class SandboxTimeout(AirlockError):
    """410 sandbox_expired: the sandbox reached its lifetime and was destroyed."""


class QuotaExceeded(AirlockError):
    """429 quota_exceeded (the daemon's --max-sandboxes) or sandbox_quota
    (this key's --max-sandboxes-per-key): too many live sandboxes. Waiting
    does not help; closing sandboxes does. Also too_many_contexts: a sandbox
    has at most 8 code contexts; remove one first."""


class RateLimitError(AirlockError):
    """429 rate_limited, too_many_requests or too_many_auth_failures: the
    daemon refused the request before doing anything, so sending it again
    later is safe.  ``retry_after`` is the daemon's Retry-After in seconds
    (None if it gave none).  The SDK has already waited and retried once when
    that wait was short (see ``Transport.RATE_LIMIT_RETRY_MAX_S``)."""

    def __init__(self, message, status=None, code=None, retry_after=None):
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class InvalidRequest(AirlockError):
    """400, 405, 409, 413: the request itself is wrong or conflicts with state."""


class PayloadTooLarge(InvalidRequest):
    """413: body or upload bigger than the daemon's limit."""


class PathEscape(InvalidRequest):
    """400 path_escape: a file path that would leave the sandbox."""


class PathForbidden(InvalidRequest):
    """400 path_forbidden: a path under /proc, /sys or /dev (kernel
    interfaces, not files)."""


class RegionUnavailable(InvalidRequest):
    """400 region_unavailable: the message lists the regions served."""


class EgressUnavailable(InvalidRequest):
    """400 egress_unavailable: the asked egress is not served here (a vm
    sandbox has no network interface)."""


class IsolationUnavailable(InvalidRequest):
    """400 isolation_unavailable: isolation="vm" on a host whose vm backend could not start."""


class TemplateNotFound(InvalidRequest):
    """400 template_not_found."""


class TemplateCorrupt(InvalidRequest):
    """409 template_corrupt: the template's tree no longer matches its tree hash;
    an admin rebuilds or removes it."""


class SandboxPaused(InvalidRequest):
    """409 sandbox_paused: the call needs the sandbox's agent and the
    sandbox is paused; ``resume()`` it (or ``Sandbox.connect`` it) first."""


class SandboxBusy(InvalidRequest):
    """409 sandbox_busy: a pause was refused because a call (run_code, exec,
    a file transfer) is still running in the sandbox; pause after it ends."""


class ServerError(AirlockError):
    """5xx: a daemon or host failure (503 unavailable, 507 no_space, 500 internal)."""


class AuditUnavailable(ServerError):
    """503 audit_unavailable: the daemon cannot write its state database (its
    disk is full, or the database failed), so it refused the action: nothing
    was done, and sending it again once ``/v1/healthz`` is ``ok`` is safe."""


class ReplRestarted(UserWarning):
    """Warned (``warnings.warn``) by ``run_code`` when the result says the
    sandbox's Python REPL was restarted: the variables, imports and
    definitions of earlier calls are gone (``Execution.repl_restarted``)."""


_BY_CODE = {
    "region_unavailable": RegionUnavailable,
    "egress_unavailable": EgressUnavailable,
    "isolation_unavailable": IsolationUnavailable,
    "template_not_found": TemplateNotFound,
    "template_corrupt": TemplateCorrupt,
    "path_escape": PathEscape,
    "path_forbidden": PathForbidden,
    "digest_mismatch": IntegrityError,
    "payload_too_large": PayloadTooLarge,
    "sandbox_expired": SandboxTimeout,
    "sandbox_paused": SandboxPaused,
    "sandbox_busy": SandboxBusy,
    "audit_unavailable": AuditUnavailable,
    "quota_exceeded": QuotaExceeded,
    "sandbox_quota": QuotaExceeded,
    "too_many_contexts": QuotaExceeded,
    "rate_limited": RateLimitError,
    "too_many_requests": RateLimitError,
    "too_many_auth_failures": RateLimitError,
}


def _retry_after(headers):
    """Retry-After in whole seconds (the daemon sends delta-seconds), or None."""
    if not headers:
        return None
    v = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        n = int(str(v).strip())
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def error_from_response(status, body, headers=None):
    """Build the typed error for an HTTP error status, its (raw) body and
    its headers (a mapping with .get, e.g. http.client's HTTPMessage)."""
    import json

    code, message = None, None
    try:
        err = json.loads(body.decode("utf-8", "replace")).get("error")
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message")
    except (ValueError, AttributeError):
        pass
    if not message:
        text = body.decode("utf-8", "replace").strip() if body else ""
        message = text[:500] or "HTTP %d" % status
    cls = _BY_CODE.get(code)
    if cls is None:
        if status in (401, 403):
            cls = AuthError
        elif status == 404:
            cls = NotFound
        elif status == 410:
            cls = SandboxTimeout
        elif status == 413:
            cls = PayloadTooLarge
        elif status == 429:
            cls = RateLimitError if _retry_after(headers) is not None else QuotaExceeded
        elif 400 <= status < 500:
            cls = InvalidRequest
        else:
            cls = ServerError
    if cls is RateLimitError:
        return cls(message, status=status, code=code, retry_after=_retry_after(headers))
    return cls(message, status=status, code=code)


class WheelInstallError(AirlockError):
    """``Sandbox.install_wheels``: pip refused (its message is this error's
    message); ``execution`` is the pip run's Execution."""

    def __init__(self, message, execution):
        super().__init__(message, code="wheel_install_failed")
        self.execution = execution
