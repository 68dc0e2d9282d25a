// The shopper's cart: its id is made once (crypto.randomUUID-based, within the
// cart API's 1–64 of [A-Za-z0-9_-]) and kept in localStorage, so a reload or a
// new tab finds the same cart. The header's item count follows every change
// (event "shop:cart" on window, detail = item count).

import { api } from "./api.js";

const CART_ID_KEY = "shop.cart_id";
const COUNT_KEY = "shop.cart_count";
const VALID_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const CART_EVENT = "shop:cart";

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // Not a secure context (randomUUID missing): the same v4 layout from getRandomValues.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function newId(prefix) {
  return `${prefix}${uuid()}`;
}

/** This browser's cart id, made on first use. */
export function getCartId() {
  let id = null;
  try {
    id = localStorage.getItem(CART_ID_KEY);
  } catch {
    /* storage disabled */
  }
  if (!id || !VALID_ID.test(id)) {
    id = `cart_${uuid()}`; // 41 characters
    try {
      localStorage.setItem(CART_ID_KEY, id);
    } catch {
      /* ignore */
    }
  }
  return id;
}

function path(suffix = "") {
  return `/api/carts/${encodeURIComponent(getCartId())}${suffix}`;
}

export function itemCount(cart) {
  return cart && Array.isArray(cart.lines) ? cart.lines.reduce((n, line) => n + line.quantity, 0) : 0;
}

/** The last known item count (for the header before the cart has loaded). */
export function cachedCount() {
  try {
    const n = Number(localStorage.getItem(COUNT_KEY));
    return Number.isFinite(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

export function noteCount(count) {
  try {
    localStorage.setItem(COUNT_KEY, String(count));
  } catch {
    /* ignore */
  }
  window.dispatchEvent(new CustomEvent(CART_EVENT, { detail: count }));
}

function track(cart) {
  noteCount(itemCount(cart));
  return cart;
}

export async function getCart() {
  return track(await api(path()));
}

export async function addItem(sku, quantity) {
  return track(await api(path("/items"), { method: "POST", body: { sku, quantity } }));
}

export async function setQuantity(sku, quantity) {
  return track(await api(path(`/items/${encodeURIComponent(sku)}`), { method: "PUT", body: { quantity } }));
}

export async function removeItem(sku) {
  return track(await api(path(`/items/${encodeURIComponent(sku)}`), { method: "DELETE" }));
}

// Products by sku, fetched once per page view.
const products = new Map();

export function getProduct(sku) {
  if (!products.has(sku)) {
    const pending = api(`/api/products/${encodeURIComponent(sku)}`);
    pending.catch(() => products.delete(sku));
    products.set(sku, pending);
  }
  return products.get(sku);
}

/** The cart's lines joined with their products: [{sku, quantity, product|null, error|null}]. */
export async function cartWithProducts() {
  const cart = await getCart();
  const lines = await Promise.all(
    cart.lines.map(async (line) => {
      try {
        return { ...line, product: await getProduct(line.sku), error: null };
      } catch (error) {
        return { ...line, product: null, error };
      }
    }),
  );
  return { cart, lines };
}
