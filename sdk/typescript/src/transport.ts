/** HTTP transport over Node 20's global fetch: JSON, raw bytes, NDJSON streams. */
import { AirlockConnectionError, IntegrityError, TransferError, errorFromResponse, RateLimitError } from "./errors.js";

declare const process: { env: Record<string, string | undefined> };

export const DEFAULT_URL = "http://127.0.0.1:7070";

export interface ConnectionOptions {
  /** http://host:port (default AIRLOCK_URL, else http://127.0.0.1:7070). */
  baseUrl?: string;
  /** Bearer key (default AIRLOCK_API_KEY). */
  apiKey?: string;
}

export async function sha256Hex(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as unknown as ArrayBuffer);
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

export interface RequestOptions {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  /** milliseconds; undefined = no limit */
  timeoutMs?: number;
  /** aborts the request (a watch's stop) */
  signal?: AbortSignal;
}

export class Transport {
  readonly baseUrl: string;
  readonly apiKey?: string;
  /** Longest Retry-After (s) the transport waits out and retries once by itself. */
  static RATE_LIMIT_RETRY_MAX_S = 5;

  constructor(opts: ConnectionOptions = {}) {
    this.baseUrl = (opts.baseUrl ?? process.env.AIRLOCK_URL ?? DEFAULT_URL).replace(/\/+$/, "");
    this.apiKey = opts.apiKey ?? process.env.AIRLOCK_API_KEY;
    if (!/^https?:\/\//.test(this.baseUrl))
      throw new AirlockConnectionError(`bad AIRLOCK_URL ${JSON.stringify(this.baseUrl)}: use http:// or https://`);
  }

  private url(path: string, query?: Record<string, string>): string {
    let u = this.baseUrl + path;
    if (query && Object.keys(query).length) u += "?" + new URLSearchParams(query).toString();
    return u;
  }

  private async send(method: string, path: string, o: RequestOptions): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...o.headers };
    if (this.apiKey) headers["Authorization"] = "Bearer " + this.apiKey;
    for (let attempt = 0; ; attempt++) {
      let resp: Response;
      try {
        resp = await fetch(this.url(path, o.query), {
          method, headers, body: o.body as BodyInit | undefined,
          signal: o.timeoutMs !== undefined
            ? (o.signal ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]) : AbortSignal.timeout(o.timeoutMs))
            : o.signal,
        });
      } catch (e) {
        const err = e as Error;
        if (err.name === "TimeoutError") throw new AirlockConnectionError(`request to ${this.baseUrl} timed out`);
        throw new AirlockConnectionError(`cannot reach airlockd at ${this.baseUrl}: ${(err.cause as Error)?.message ?? err.message}`);
      }
      if (resp.status < 400) return resp;
      let text = "";
      try { text = await resp.text(); } catch { /* body lost */ }
      const err = errorFromResponse(resp.status, text, resp.headers);
      if (attempt === 0 && err instanceof RateLimitError && err.retryAfter !== undefined
          && err.retryAfter <= Transport.RATE_LIMIT_RETRY_MAX_S) {
        await new Promise((r) => setTimeout(r, err.retryAfter! * 1000));
        continue;
      }
      throw err;
    }
  }

  async requestJson(method: string, path: string, payload?: unknown, o: RequestOptions = {}): Promise<any> {
    const headers = { ...o.headers };
    let body: string | undefined;
    if (payload !== undefined) {
      body = JSON.stringify(payload);
      headers["Content-Type"] = "application/json";
    }
    const resp = await this.send(method, path, { ...o, body: body ?? o.body, headers });
    let text: string;
    try { text = await resp.text(); } catch (e) {
      throw new AirlockConnectionError(`connection to ${this.baseUrl} lost while reading: ${(e as Error).message}`);
    }
    if (!text) return {};
    try { return JSON.parse(text); } catch (e) {
      throw new AirlockConnectionError(`bad JSON from airlockd: ${(e as Error).message}`);
    }
  }

  /** A whole body, checked against Content-Length (TransferError) and X-Content-SHA256 (IntegrityError). */
  async requestBytes(method: string, path: string, o: RequestOptions = {}): Promise<Uint8Array> {
    const resp = await this.send(method, path, { ...o, headers: { Accept: "*/*", ...o.headers } });
    // a gzip body is inflated by fetch: its length is the daemon's X-Content-Length
    const gz = (resp.headers.get("Content-Encoding") ?? "").toLowerCase() === "gzip";
    const cl = resp.headers.get(gz ? "X-Content-Length" : "Content-Length");
    const declared = cl !== null && /^\d+$/.test(cl) ? parseInt(cl, 10) : undefined;
    const want = (resp.headers.get("X-Content-SHA256") ?? "").trim().toLowerCase() || undefined;
    const chunks: Uint8Array[] = [];
    let total = 0;
    try {
      const reader = resp.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        total += value.length;
      }
    } catch (e) {
      throw new TransferError(`connection lost during download after ${total} bytes: ${(e as Error).message}`);
    }
    if (declared !== undefined && total !== declared)
      throw new TransferError(`download cut short: ${total} of ${declared} bytes arrived`);
    const out = new Uint8Array(total);
    let off = 0;
    for (const c of chunks) { out.set(c, off); off += c.length; }
    return checkDigest(out, want);
  }

  /** Send JSON (none when payload is undefined: a GET); yield each NDJSON line as it arrives. The stream must
   * end with a `terminal` event type. */
  async *streamLines(method: string, path: string, payload: unknown, terminal: Set<string>,
                     o: RequestOptions = {}): AsyncGenerator<any> {
    const resp = await this.send(method, path, payload === undefined
      ? { ...o, headers: { Accept: "application/x-ndjson" } }
      : { ...o, body: JSON.stringify(payload), headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" } });
    const reader = resp.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    let ended = false;
    try {
      for (;;) {
        let r: ReadableStreamReadResult<string>;
        try { r = await reader.read(); } catch (e) {
          throw new TransferError(`connection lost during stream: ${(e as Error).message}`);
        }
        if (r.done) break;
        buf += r.value;
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          let ev: any;
          try { ev = JSON.parse(line); } catch (e) {
            throw new AirlockConnectionError(`bad NDJSON line from airlockd: ${(e as Error).message}`);
          }
          ended = terminal.has(ev?.type);
          yield ev;
        }
      }
      if (buf.trim()) {
        let ev: any;
        try { ev = JSON.parse(buf); } catch (e) {
          throw new AirlockConnectionError(`bad NDJSON line from airlockd: ${(e as Error).message}`);
        }
        ended = terminal.has(ev?.type);
        yield ev;
      }
      if (!ended)
        throw new TransferError(`the stream ended without its terminal event (${[...terminal].sort().join(" or ")}): the connection was cut`);
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

export async function checkDigest(data: Uint8Array, want?: string): Promise<Uint8Array> {
  if (want !== undefined) {
    const got = await sha256Hex(data);
    if (got !== want)
      throw new IntegrityError(`download corrupted: sha256 ${got}, the daemon sent ${want}`, { code: "digest_mismatch" });
  }
  return data;
}
