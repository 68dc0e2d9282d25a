// Who the shopper is: the session from sign-in, kept in sessionStorage as
// {token, customer_id, expires_at}; and a guest's order access tokens
// (`oat_…`, shown once by checkout), kept in localStorage keyed by order id.

const SESSION_KEY = "shop.session";
const ORDER_TOKENS_KEY = "shop.order_tokens";

function read(storage, key) {
  try {
    const raw = storage.getItem(key);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function write(storage, key, value) {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: the page still works for this visit */
  }
}

/** The session, or null when signed out or expired. */
export function getSession() {
  const session = read(sessionStorage, SESSION_KEY);
  if (!session || typeof session.token !== "string") return null;
  if (session.expires_at && Date.parse(session.expires_at) <= Date.now()) {
    clearSession();
    return null;
  }
  return session;
}

export function setSession({ token, customer_id, expires_at }) {
  write(sessionStorage, SESSION_KEY, { token, customer_id, expires_at });
}

export function clearSession() {
  try {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem("shop.customer");
  } catch {
    /* ignore */
  }
}

/** The signed-in customer's record as last fetched ({name, email, ...}), for prefilling. */
export function getCachedCustomer() {
  return read(sessionStorage, "shop.customer");
}
export function setCachedCustomer(customer) {
  write(sessionStorage, "shop.customer", customer);
}

/** {order_id: {token, saved_at}} of the orders this browser placed as a guest. */
export function getOrderTokens() {
  const tokens = read(localStorage, ORDER_TOKENS_KEY);
  return tokens && typeof tokens === "object" ? tokens : {};
}

export function saveOrderToken(orderId, token) {
  const tokens = getOrderTokens();
  tokens[orderId] = { token, saved_at: new Date().toISOString() };
  write(localStorage, ORDER_TOKENS_KEY, tokens);
}

export function getOrderToken(orderId) {
  const entry = getOrderTokens()[orderId];
  return entry && typeof entry.token === "string" ? entry.token : null;
}

export function forgetOrderToken(orderId) {
  const tokens = getOrderTokens();
  delete tokens[orderId];
  write(localStorage, ORDER_TOKENS_KEY, tokens);
}

/** The credential that opens an order: its own access token when this browser
 *  has one (it opens exactly that order), else the session. */
export function orderAuth(orderId) {
  const token = getOrderToken(orderId);
  if (token) return token;
  const session = getSession();
  return session ? session.token : null;
}
