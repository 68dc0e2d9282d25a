// Stock levels: every product (GET /api/products, page by page) with its
// stock (GET /api/inventory/{sku}), and restock (PUT /api/inventory/{sku}
// {"on_hand": n}, admin).

import { request, mapLimit, h, clear, status, announce, errorText, ApiError } from './admin-api.js';

const LOW_STOCK = 5;
const MAX_ON_HAND = 1_000_000_000;

let products = [];
let levels = new Map(); // sku → StockLevel | { missing: true } | { error }
let loading = null;

const $ = (id) => document.getElementById(id);

export function initStock() {
  $('stock-refresh').addEventListener('click', () => loadStock());
  $('stock-filter').addEventListener('input', () => render());
}

async function allProducts() {
  const all = [];
  for (let page = 1; page < 1000; page++) {
    const body = await request('GET', `/api/products?per_page=100&page=${page}`, { auth: false });
    all.push(...body.products);
    if (body.products.length === 0 || all.length >= body.total) break;
  }
  return all;
}

async function stockOf(sku) {
  try {
    return await request('GET', `/api/inventory/${encodeURIComponent(sku)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return { sku, missing: true };
    throw error;
  }
}

export function loadStock() {
  if (loading) return loading;
  loading = (async () => {
    const line = $('stock-status');
    status(line, 'Loading products and stock…', 'busy');
    $('stock-refresh').disabled = true;
    try {
      products = await allProducts();
      const results = await mapLimit(products, 6, (p) => stockOf(p.sku));
      levels = new Map(products.map((p, i) => [p.sku, results[i].ok ? results[i].value : { error: results[i].error }]));
      render();
      const failed = results.filter((r) => !r.ok).length;
      const low = [...levels.values()].filter((l) => typeof l.available === 'number' && l.available <= LOW_STOCK).length;
      status(line, `${products.length} products · ${low} low (≤ ${LOW_STOCK} available)${failed ? ` · ${failed} could not be read` : ''} · read ${new Date().toLocaleTimeString()}`, failed ? 'error' : '');
    } catch (error) {
      status(line, `Could not load stock: ${errorText(error)}`, 'error');
    } finally {
      $('stock-refresh').disabled = false;
      loading = null;
    }
  })();
  return loading;
}

function render() {
  const body = clear($('stock-body'));
  const filter = $('stock-filter').value.trim().toLowerCase();
  const shown = products.filter((p) => !filter || p.sku.toLowerCase().includes(filter) || p.name.toLowerCase().includes(filter));
  if (shown.length === 0) {
    body.append(h('tr', {}, h('td', { colspan: 6, class: 'adm-muted' }, products.length ? 'No product matches the filter.' : 'No products.')));
    return;
  }
  for (const product of shown) body.append(row(product));
}

function cells(level) {
  if (level.error) return [h('td', { class: 'num adm-error-cell', colspan: 3 }, errorText(level.error))];
  if (level.missing) return [h('td', { class: 'num adm-muted', colspan: 3, dataset: { testid: 'stock-missing' } }, 'not stocked')];
  const low = level.available <= LOW_STOCK;
  return [
    h('td', { class: 'num', dataset: { testid: 'stock-on-hand' } }, level.on_hand),
    h('td', { class: 'num', dataset: { testid: 'stock-reserved' } }, level.reserved),
    h('td', { class: `num${low ? ' adm-low' : ''}`, dataset: { testid: 'stock-available' } },
      level.available, low ? [' ', h('span', { class: 'adm-pill adm-pill-warn' }, 'low')] : null),
  ];
}

function row(product) {
  const level = levels.get(product.sku) || {};
  const inputId = `restock-${product.sku}`;
  const message = h('span', { class: 'adm-inline-status', role: 'status', dataset: { testid: 'restock-status' } });
  const input = h('input', {
    type: 'number', id: inputId, name: 'on_hand', min: 0, max: MAX_ON_HAND, step: 1, inputmode: 'numeric', required: true,
    value: typeof level.on_hand === 'number' ? level.on_hand : '', class: 'adm-num-input', dataset: { testid: 'restock-input' },
  });
  const button = h('button', { type: 'submit', class: 'adm-btn adm-btn-small', dataset: { testid: 'restock-submit' } }, 'Set');
  const form = h('form', { class: 'adm-restock', novalidate: true, dataset: { testid: 'restock-form', sku: product.sku } },
    h('label', { for: inputId, class: 'visually-hidden' }, `New on hand for ${product.sku}`),
    input, button, message);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    restock(product.sku, input, button, message);
  });
  return h('tr', { dataset: { testid: 'stock-row', sku: product.sku } },
    h('th', { scope: 'row' }, h('code', {}, product.sku)),
    h('td', {}, product.name),
    ...cells(level),
    h('td', {}, form));
}

async function restock(sku, input, button, message) {
  const text = input.value.trim();
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > MAX_ON_HAND) {
    input.setAttribute('aria-invalid', 'true');
    status(message, `a whole number from 0 to ${MAX_ON_HAND.toLocaleString()}`, 'error');
    input.focus();
    return;
  }
  input.removeAttribute('aria-invalid');
  button.disabled = true;
  status(message, 'saving…', 'busy');
  try {
    const level = await request('PUT', `/api/inventory/${encodeURIComponent(sku)}`, { body: { on_hand: value } });
    levels.set(sku, level);
    const tr = input.closest('tr');
    const fresh = row(products.find((p) => p.sku === sku));
    tr.replaceWith(fresh);
    const freshStatus = fresh.querySelector('[data-testid="restock-status"]');
    status(freshStatus, `saved: ${level.on_hand} on hand`, 'ok');
    fresh.querySelector('[data-testid="restock-input"]').focus();
    announce(`${sku}: ${level.on_hand} on hand, ${level.available} available`);
  } catch (error) {
    status(message, errorText(error), 'error');
    button.disabled = false;
  }
}
