// The one fetch wrapper every shopper page uses: JSON in and out, the API's
// `{"error": {"code", "message", ...}}` turned into an ApiError, and a failure
// to reach the server at all turned into a NetworkError (so pages can offer
// "retry" for the latter and show the server's message for the former).

import { getSession, clearSession } from "./session.js";

/** An error answer of the API: `status`, `code`, `message`, `field` (when the
 *  error names one), `details` (the whole error object, with any extra fields
 *  such as `skus`, `shortages`, `checkout_id`) and `retryAfter` (seconds, from
 *  the Retry-After header, when given). */
export class ApiError extends Error {
  constructor(status, error, headers) {
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.field = typeof error.field === "string" ? error.field : null;
    this.details = error;
    const retry = headers && headers.get("retry-after");
    this.retryAfter = retry != null && /^\d+$/.test(retry.trim()) ? Number(retry.trim()) : null;
  }
}

/** The request never got an answer (offline, connection reset, timeout). */
export class NetworkError extends Error {
  constructor(cause) {
    super("We could not reach the shop. Check your connection and try again.");
    this.name = "NetworkError";
    this.code = "network_error";
    this.network = true;
    this.cause = cause;
  }
}

export const SIGNED_OUT_EVENT = "shop:signed-out";

/**
 * api(path, options) → the parsed JSON answer (null for 204).
 * options: method, body (JSON-encoded), headers, signal, timeoutMs,
 *   auth: "session" (send the shopper's session when signed in) or a token string.
 */
export async function api(path, { method = "GET", body, headers = {}, auth, signal, timeoutMs = 30000 } = {}) {
  const h = { accept: "application/json", ...headers };
  if (body !== undefined) h["content-type"] = "application/json";
  let sentSession = false;
  if (auth === "session") {
    const session = getSession();
    if (session) {
      h.authorization = `Bearer ${session.token}`;
      sentSession = true;
    }
  } else if (typeof auth === "string" && auth) {
    h.authorization = `Bearer ${auth}`;
    sentSession = auth.startsWith("sst_");
  }
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  if (signal) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener("abort", () => controller.abort(), { once: true });
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: controller.signal,
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    if (signal && signal.aborted) throw error; // the caller gave up; not a network failure
    throw new NetworkError(error);
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text().catch(() => "");
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const error = data && typeof data.error === "object" && data.error ? data.error : { message: `The shop answered ${response.status}.` };
    const apiError = new ApiError(response.status, error, response.headers);
    if (response.status === 401 && sentSession) {
      // The session ended (expired, signed out elsewhere): back to signed-out.
      clearSession();
      window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT));
    }
    throw apiError;
  }
  return data;
}

/** A message fit to show a person for any error api() throws. */
export function describeError(error) {
  if (error instanceof NetworkError) return error.message;
  if (error instanceof ApiError) return error.message.charAt(0).toUpperCase() + error.message.slice(1);
  return "Something went wrong. Please try again.";
}
