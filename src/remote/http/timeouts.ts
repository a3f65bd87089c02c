// The HTTP client's timeouts, shared by the in-thread pool and the transfer workers.

export interface HttpTimeouts {
  /** TCP+TLS connect. */
  connectTimeoutMs: number;
  /** From request sent to response headers. */
  headersTimeoutMs: number;
  /** Longest gap between two body chunks (a stall detector, not a total). */
  bodyTimeoutMs: number;
  /** How long an idle keep-alive connection is kept. */
  keepAliveTimeoutMs: number;
}

export const HTTP_TIMEOUT_DEFAULTS: Readonly<HttpTimeouts> = {
  connectTimeoutMs: 10_000,
  headersTimeoutMs: 30_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 30_000,
};
