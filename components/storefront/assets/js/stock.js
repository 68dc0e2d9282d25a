// Stock state from GET /api/inventory/{sku} ({sku, on_hand, reserved, available}).

import { api } from "./api.js";

export const LOW_STOCK = 5;

export function getStock(sku) {
  return api(`/api/inventory/${encodeURIComponent(sku)}`);
}

/** {text, cls, soldOut, available} for an `available` count (null: unknown). */
export function stockState(available) {
  if (available == null) return { text: "Stock unknown", cls: "stock stock-unknown", soldOut: false, available: null };
  if (available <= 0) return { text: "Sold out", cls: "stock stock-out", soldOut: true, available: 0 };
  if (available <= LOW_STOCK) return { text: `Only ${available} left`, cls: "stock stock-low", soldOut: false, available };
  return { text: "In stock", cls: "stock stock-in", soldOut: false, available };
}

/** Fills `node` (a span) with the sku's stock state; resolves to the state. */
export async function showStock(sku, node) {
  let state;
  try {
    const level = await getStock(sku);
    state = stockState(level.available);
  } catch (error) {
    // 404 unknown_sku: the warehouse does not stock it, so none can be sold.
    state = error && error.code === "unknown_sku" ? stockState(0) : stockState(null);
  }
  node.className = state.cls;
  node.textContent = state.text;
  node.dataset.stock = state.soldOut ? "out" : state.available != null && state.available <= LOW_STOCK ? "low" : state.available == null ? "unknown" : "in";
  return state;
}
