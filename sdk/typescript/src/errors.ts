/** Typed errors, mirroring sdk/python/airlock/errors.py. */
export class AirlockError extends Error {
  readonly status?: number;
  readonly code?: string;
  constructor(message: string, opts: { status?: number; code?: string } = {}) {
    super(opts.code ? `${message} (${opts.code})` : message);
    this.name = new.target.name;
    this.status = opts.status;
    this.code = opts.code;
  }
}
/** The daemon could not be reached, or the connection broke mid-request. */
export class AirlockConnectionError extends AirlockError {}
/** A download shorter than its Content-Length, or a stream without its terminal event. */
export class TransferError extends AirlockConnectionError {}
/** Bytes whose sha256 is not the one they were sent with. */
export class IntegrityError extends TransferError {}
export class AuthError extends AirlockError {}
export class NotFound extends AirlockError {}
export class SandboxTimeout extends AirlockError {}
export class QuotaExceeded extends AirlockError {}
export class RateLimitError extends AirlockError {
  readonly retryAfter?: number;
  constructor(message: string, opts: { status?: number; code?: string; retryAfter?: number } = {}) {
    super(message, opts);
    this.retryAfter = opts.retryAfter;
  }
}
export class InvalidRequest extends AirlockError {}
export class PayloadTooLarge extends InvalidRequest {}
export class PathEscape extends InvalidRequest {}
export class PathForbidden extends InvalidRequest {}
export class RegionUnavailable extends InvalidRequest {}
export class EgressUnavailable extends InvalidRequest {}
export class IsolationUnavailable extends InvalidRequest {}
export class TemplateNotFound extends InvalidRequest {}
export class TemplateCorrupt extends InvalidRequest {}
/** 409 sandbox_paused: the call needs the sandbox and it is paused; `resume()` it (or `Sandbox.connect`) first. */
export class SandboxPaused extends InvalidRequest {}
/** 409 sandbox_busy: a pause was refused while a call (runCode, exec, a file transfer) runs in the sandbox. */
export class SandboxBusy extends InvalidRequest {}
export class ServerError extends AirlockError {}
export class AuditUnavailable extends ServerError {}

type ErrorClass = new (message: string, opts: { status?: number; code?: string; retryAfter?: number }) => AirlockError;

const BY_CODE: Record<string, ErrorClass> = {
  region_unavailable: RegionUnavailable,
  egress_unavailable: EgressUnavailable,
  isolation_unavailable: IsolationUnavailable,
  template_not_found: TemplateNotFound,
  template_corrupt: TemplateCorrupt,
  path_escape: PathEscape,
  path_forbidden: PathForbidden,
  digest_mismatch: IntegrityError,
  payload_too_large: PayloadTooLarge,
  sandbox_expired: SandboxTimeout,
  sandbox_paused: SandboxPaused,
  sandbox_busy: SandboxBusy,
  audit_unavailable: AuditUnavailable,
  quota_exceeded: QuotaExceeded,
  sandbox_quota: QuotaExceeded,
  too_many_contexts: QuotaExceeded,
  rate_limited: RateLimitError,
  too_many_requests: RateLimitError,
  too_many_auth_failures: RateLimitError,
};

function retryAfter(headers?: Headers): number | undefined {
  const v = headers?.get("Retry-After");
  if (v == null || !/^\s*\d+\s*$/.test(v)) return undefined;
  return parseInt(v, 10);
}

/** The typed error for an HTTP status >= 400, its body text and headers. */
export function errorFromResponse(status: number, body: string, headers?: Headers): AirlockError {
  let code: string | undefined;
  let message: string | undefined;
  try {
    const err = JSON.parse(body)?.error;
    if (err && typeof err === "object") {
      if (typeof err.code === "string") code = err.code;
      if (typeof err.message === "string") message = err.message;
    }
  } catch {
    /* not JSON */
  }
  if (!message) message = body.trim().slice(0, 500) || `HTTP ${status}`;
  let cls = code !== undefined ? BY_CODE[code] : undefined;
  if (!cls) {
    if (status === 401 || status === 403) cls = AuthError;
    else if (status === 404) cls = NotFound;
    else if (status === 410) cls = SandboxTimeout;
    else if (status === 413) cls = PayloadTooLarge;
    else if (status === 429) cls = retryAfter(headers) !== undefined ? RateLimitError : QuotaExceeded;
    else if (status >= 400 && status < 500) cls = InvalidRequest;
    else cls = ServerError;
  }
  return new cls(message, { status, code, retryAfter: retryAfter(headers) });
}
