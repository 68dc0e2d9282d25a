// The operator page's own small toolkit: the admin token, a fetch helper
// that sends it and asks again on a 401, a DOM builder and formatters.
// Self-contained on purpose (no dependency on the shopper pages' api.js).

const TOKEN_KEY = 'shop.admin.token';

/** An API answer that was not 2xx: the shop's JSON error, or what came. */
export class ApiError extends Error {
  constructor(status, body, path) {
    const error = body && typeof body === 'object' && body.error ? body.error : null;
    super(error?.message || `HTTP ${status} from ${path}`);
    this.status = status;
    this.code = error?.code || `http_${status}`;
    this.body = body;
  }
}

export const token = {
  get() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
  },
  set(value) {
    try { sessionStorage.setItem(TOKEN_KEY, value); } catch { /* private mode: kept in memory below */ }
    memoryToken = value;
  },
  clear() {
    try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* ignore */ }
    memoryToken = '';
  },
};
let memoryToken = '';
const currentToken = () => token.get() || memoryToken;

// Who asks for a new token when the server refuses the one we sent: set by
// admin.js. Every request refused at once waits for the same new token.
let askForToken = async () => { throw new Error('no sign-in handler'); };
let pendingAsk = null;
export function onUnauthorized(handler) { askForToken = handler; }

function reauthenticate(message) {
  if (!pendingAsk) {
    pendingAsk = Promise.resolve(askForToken(message)).finally(() => { pendingAsk = null; });
  }
  return pendingAsk;
}

/**
 * `request('GET', '/api/admin/events')` → the parsed JSON body.
 * Sends the admin token; a 401 clears it, asks for another and tries again.
 * Anything else not 2xx throws an ApiError.
 */
export async function request(method, path, { body, auth = true, retries = 2 } = {}) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const bearer = currentToken();
  if (auth && bearer) headers.authorization = `Bearer ${bearer}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, { error: { code: 'network_error', message: `could not reach the shop (${error.message})` } }, path);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = text; }
  }
  if (response.status === 401 && auth) {
    token.clear();
    if (retries > 0) {
      await reauthenticate(parsed?.error?.message || 'The admin token was refused.');
      return request(method, path, { body, auth, retries: retries - 1 });
    }
  }
  if (!response.ok) throw new ApiError(response.status, parsed, path);
  return parsed;
}

/** Runs `worker(item)` over `items`, at most `limit` at a time, in order of results. */
export async function mapLimit(items, limit, worker) {
  const results = new Array(items.length);
  let next = 0;
  const run = async () => {
    while (next < items.length) {
      const i = next++;
      try { results[i] = { ok: true, value: await worker(items[i], i) }; } catch (error) { results[i] = { ok: false, error }; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
  return results;
}

/** `h('td', { class: 'num', dataset: { testid: 'x' } }, 'text', child)` */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'text') el.textContent = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** Minor units → "€12.90" in the currency given. */
export function money(amount, currency) {
  if (typeof amount !== 'number' || !currency) return '—';
  try {
    const format = new Intl.NumberFormat('en-IE', { style: 'currency', currency });
    return format.format(amount / 10 ** format.resolvedOptions().maximumFractionDigits);
  } catch {
    return `${(amount / 100).toFixed(2)} ${currency}`;
  }
}

/** An RFC 3339 time as "2026-03-01 09:31:12.450" (local), or "—". */
export function time(value, { date = true } = {}) {
  if (!value) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  const clock = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  return date ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${clock}` : clock;
}

/** Milliseconds as "3 ms", "1.24 s", "2 min 5 s". */
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** Seconds (an age) as a duration, or "—". */
export function age(seconds) {
  return seconds === null || seconds === undefined ? '—' : duration(seconds * 1000);
}

/** Says `text` to screen readers (the page's polite live region). */
export function announce(text) {
  const region = document.getElementById('adm-announce');
  if (!region) return;
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 30);
}

/** Shows `text` in a status line, `kind` = '' | 'ok' | 'error' | 'busy'. */
export function status(el, text, kind = '') {
  el.textContent = text || '';
  el.dataset.kind = kind;
}

export function errorText(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  return error?.message || String(error);
}
