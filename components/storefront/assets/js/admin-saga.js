// A checkout drawn as its saga: by id (typed, from the page's address
// `#saga=<id>`, or picked from a customer's orders, the checkout outbox or
// the ids looked at before) → GET /api/checkout/{id} → graph, summary and
// the steps' table.

import { request, h, clear, status, announce, errorText, time, duration, money, ApiError } from './admin-api.js';
import { sagaModel, renderSagaGraph, OUTCOMES } from './admin-saga-graph.js';

const $ = (id) => document.getElementById(id);
const SEEN_KEY = 'shop.admin.seen-checkouts';
const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
let fromOutbox = [];
let showing = null;

export function initSaga() {
  $('saga-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const id = $('saga-id').value.trim();
    if (!ID_PATTERN.test(id)) {
      $('saga-id').setAttribute('aria-invalid', 'true');
      status($('saga-error'), 'A checkout id is letters, digits, "_" and "-", like chk_5b1e0c9d….', 'error');
      $('saga-id').focus();
      return;
    }
    openSaga(id);
  });
  $('recent-form').addEventListener('submit', (event) => {
    event.preventDefault();
    findOrders($('recent-customer').value.trim());
  });
  window.addEventListener('hashchange', fromHash);
  renderLegend();
  renderPicker();
}

/** `#saga=<id>` in the address opens that checkout. */
export function fromHash() {
  const match = /^#saga=(.+)$/.exec(window.location.hash);
  if (!match) return;
  const id = decodeURIComponent(match[1]);
  if (ID_PATTERN.test(id) && id !== showing) openSaga(id);
}

/** The checkout ids the outboxes mention (completed checkouts' order.placed). */
export function setOutboxCheckouts(ids) {
  fromOutbox = ids.slice(0, 12);
  renderPicker();
}

function seen() {
  try { return JSON.parse(localStorage.getItem(SEEN_KEY) || '[]').filter((id) => ID_PATTERN.test(id)); } catch { return []; }
}

function remember(id) {
  const list = [id, ...seen().filter((x) => x !== id)].slice(0, 12);
  try { localStorage.setItem(SEEN_KEY, JSON.stringify(list)); } catch { /* ignore */ }
}

function chip(id, label, testid = 'recent-checkout') {
  const button = h('button', { type: 'button', class: 'adm-chip', dataset: { testid, checkoutId: id }, title: `Show the saga of ${id}` }, label || id);
  button.addEventListener('click', () => openSaga(id));
  return button;
}

function renderPicker() {
  const box = $('recent-picker') || $('recent-list').parentNode.insertBefore(h('div', { id: 'recent-picker', class: 'adm-recent', dataset: { testid: 'recent-picker' } }), $('recent-list'));
  clear(box);
  const viewed = seen();
  if (viewed.length) box.append(h('div', { class: 'adm-chips' }, h('span', { class: 'adm-chips-label' }, 'Looked at:'), ...viewed.map((id) => chip(id, short(id), 'seen-checkout'))));
  if (fromOutbox.length) box.append(h('div', { class: 'adm-chips' }, h('span', { class: 'adm-chips-label' }, 'Recent from the checkout outbox:'), ...fromOutbox.map((id) => chip(id, short(id), 'outbox-checkout'))));
}

const short = (id) => (id.length > 18 ? `${id.slice(0, 14)}…${id.slice(-4)}` : id);

async function findOrders(customer) {
  const line = $('recent-status');
  const list = clear($('recent-list'));
  if (!customer) {
    $('recent-customer').setAttribute('aria-invalid', 'true');
    status(line, 'Enter a customer email or id.', 'error');
    $('recent-customer').focus();
    return;
  }
  $('recent-customer').removeAttribute('aria-invalid');
  status(line, 'Looking up orders…', 'busy');
  try {
    const page = await request('GET', `/api/orders?customer=${encodeURIComponent(customer)}&per_page=20`);
    if (!page.orders.length) {
      status(line, `No orders for ${customer}. (A declined checkout makes no order: open it by its id.)`, '');
      return;
    }
    status(line, `${page.total} order${page.total === 1 ? '' : 's'} for ${customer}, newest first${page.total > page.orders.length ? ` (showing ${page.orders.length})` : ''}.`, 'ok');
    const rows = page.orders.map((order) => h('tr', { dataset: { testid: 'recent-order', orderId: order.id } },
      h('th', { scope: 'row' }, h('code', {}, order.id)),
      h('td', {}, time(order.created_at)),
      h('td', {}, order.status),
      h('td', { class: 'num' }, money(order.totals?.grand_total, order.totals?.currency)),
      h('td', {}, order.checkout_id ? chip(order.checkout_id, 'Show saga') : h('span', { class: 'adm-muted' }, 'no checkout'))));
    list.append(h('div', { class: 'adm-scroll' }, h('table', { class: 'adm-table adm-table-compact' },
      h('caption', { class: 'visually-hidden' }, `Orders of ${customer}`),
      h('thead', {}, h('tr', {}, ...['Order', 'Placed', 'Status', 'Total', 'Checkout'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, ...rows))));
  } catch (error) {
    status(line, `Could not list orders: ${errorText(error)}`, 'error');
  }
}

export async function openSaga(id) {
  showing = id;
  $('saga-id').value = id;
  $('saga-id').removeAttribute('aria-invalid');
  const error = $('saga-error');
  status(error, '');
  const view = $('saga-view');
  view.setAttribute('aria-busy', 'true');
  try {
    const checkout = await request('GET', `/api/checkout/${encodeURIComponent(id)}`, { auth: false });
    if (showing !== id) return;
    render(checkout);
    remember(id);
    renderPicker();
    if (window.location.hash !== `#saga=${encodeURIComponent(id)}`) history.replaceState(null, '', `#saga=${encodeURIComponent(id)}`);
    view.hidden = false;
    $('saga').scrollIntoView({ block: 'start' });
    announce(`Checkout ${id}: ${checkout.status}`);
  } catch (err) {
    view.hidden = true;
    status(error, err instanceof ApiError && err.status === 404 ? `No checkout has the id ${id}.` : `Could not load ${id}: ${errorText(err)}`, 'error');
  } finally {
    view.removeAttribute('aria-busy');
  }
}

function render(checkout) {
  const model = sagaModel(checkout);
  renderSummary(checkout);
  clear($('saga-graph')).append(renderSagaGraph(model));
  const body = clear($('saga-steps'));
  model.nodes.forEach((node, i) => {
    const step = node.step;
    const comp = node.compensation;
    body.append(h('tr', { dataset: { testid: 'saga-step-row', step: node.name, outcome: node.outcome } },
      h('td', { class: 'num' }, i + 1),
      h('th', { scope: 'row' }, h('code', {}, node.name)),
      h('td', {}, h('span', { class: `adm-swatch is-${node.outcome}`, 'aria-hidden': 'true' }), node.outcome.replace('_', ' ')),
      h('td', {}, step ? time(step.started_at) : '—'),
      h('td', { class: 'num' }, step ? duration(step.duration_ms) : '—'),
      h('td', {}, comp ? `${comp.name} at ${time(comp.at)} (${duration(comp.duration_ms)})`
        : node.pendingCompensation ? 'to be compensated' : '')));
  });
}

function renderSummary(checkout) {
  const box = clear($('saga-summary'));
  const total = Date.parse(checkout.updated_at) - Date.parse(checkout.created_at);
  const fields = [
    ['Checkout', h('code', { dataset: { testid: 'saga-checkout-id' } }, checkout.id)],
    ['Status', h('span', { class: `adm-pill adm-status-${checkout.status}`, dataset: { testid: 'saga-status' } }, checkout.status)],
    ['Started', time(checkout.created_at)],
    ['Last change', `${time(checkout.updated_at)} (${duration(total)} after the start)`],
  ];
  if (checkout.order_id) fields.push(['Order', h('code', {}, checkout.order_id)]);
  if (checkout.reservation_id) fields.push(['Reservation', h('code', {}, checkout.reservation_id)]);
  if (checkout.authorization_id) fields.push(['Payment', h('code', {}, checkout.authorization_id)]);
  if (checkout.totals) fields.push(['Total', money(checkout.totals.grand_total, checkout.totals.currency)]);
  if (checkout.error) fields.push(['Error', h('span', { class: 'adm-error-text', dataset: { testid: 'saga-error-code' } }, `${checkout.error.code}: ${checkout.error.message}`)]);
  const refresh = h('button', { type: 'button', class: 'adm-btn adm-btn-secondary adm-btn-small', dataset: { testid: 'saga-refresh' } }, 'Refresh');
  refresh.addEventListener('click', () => openSaga(checkout.id));
  box.append(h('dl', { class: 'adm-dl' }, ...fields.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])), refresh);
}

function renderLegend() {
  const legend = clear($('saga-legend'));
  legend.append(h('span', { class: 'adm-legend-title' }, 'Legend:'),
    ...OUTCOMES.map(([outcome, words]) => h('span', { class: 'adm-legend-item', dataset: { testid: 'legend-item', outcome } },
      h('span', { class: `adm-swatch is-${outcome}`, 'aria-hidden': 'true' }), words)),
    h('span', { class: 'adm-legend-item' }, h('span', { class: 'adm-legend-arrow', 'aria-hidden': 'true' }, '↓'), 'next step'),
    h('span', { class: 'adm-legend-item', dataset: { testid: 'legend-compensation' } }, h('span', { class: 'adm-legend-arrow is-back', 'aria-hidden': 'true' }, '↩'), 'compensation, the path back: its name, when it ran, how long it took'),
    h('span', { class: 'adm-legend-item' }, h('span', { class: 'adm-legend-bar', 'aria-hidden': 'true' }), 'bar: duration against the longest step'));
}
