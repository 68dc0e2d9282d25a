// The operator page, /admin: stock and restock, events and dead letters,
// any checkout drawn as its saga. Plain ES modules, no build step; it
// depends on nothing of the shopper pages' scripts.
//
// The admin token is asked for once per tab (sessionStorage) and sent as
// `Authorization: Bearer <token>`; a 401 asks again and retries.
//
// Stable data-testids (for browser tests):
//   page:     brand, nav-stock, nav-events, nav-saga, sign-out, announce, console
//   sign-in:  auth, auth-form, auth-token, auth-submit, auth-error
//   stock:    stock-section, stock-filter, stock-refresh, stock-status, stock-table,
//             stock-row [data-sku], stock-on-hand, stock-reserved, stock-available,
//             stock-missing, restock-form [data-sku], restock-input, restock-submit,
//             restock-status
//   events:   events-section, events-refresh, events-status, events-summary,
//             events-due, events-oldest, events-republishes, events-undeliverable,
//             events-dead-letters, events-incomplete, events-services,
//             events-service-row [data-service], service-due, service-delivered,
//             service-dead-letters, outbox-flush, flush-result,
//             outbox-list, outbox-service [data-service], outbox-entry [data-state],
//             outbox-checkout-link
//   dead letters: dead-letters-status (select), dead-letters-table,
//             dead-letters-empty, dead-letter-row [data-id, data-status],
//             dead-letter-replay, dead-letter-envelope-toggle, replay-result
//   saga:     saga-section, saga-form, saga-id, saga-submit, saga-error,
//             recent-form, recent-customer, recent-submit, recent-status,
//             recent-list, recent-order [data-order-id],
//             recent-checkout [data-checkout-id] (in a customer's orders),
//             recent-picker, seen-checkout, outbox-checkout [data-checkout-id],
//             saga-view, saga-summary, saga-checkout-id, saga-status,
//             saga-error-code, saga-refresh, saga-graph, saga-svg,
//             saga-node [data-step, data-outcome], saga-node-meta,
//             saga-duration-bar, saga-compensation [data-compensation, data-step],
//             saga-compensation-time, saga-end [data-status], saga-legend,
//             legend-item [data-outcome], legend-compensation,
//             saga-steps-table, saga-step-row [data-step, data-outcome]
//   data-outcome is one of: ok, failed, compensated, running, skipped, not_reached.
//   The address `/admin#saga=<checkout id>` opens that checkout's saga.

import { request, token, onUnauthorized, status, errorText, ApiError } from './admin-api.js';
import { initStock, loadStock } from './admin-stock.js';
import { initEvents, loadEvents } from './admin-events.js';
import { initSaga, fromHash, setOutboxCheckouts } from './admin-saga.js';

const $ = (id) => document.getElementById(id);

let waiting = null; // { resolve } while the sign-in form stands for a refused token

function showAuth(message) {
  $('console').hidden = true;
  $('auth').hidden = false;
  $('sign-out').hidden = true;
  status($('auth-error'), message || '', message ? 'error' : '');
  const input = $('auth-token');
  input.value = '';
  if (message) input.setAttribute('aria-invalid', 'true');
  input.focus();
}

function showConsole() {
  $('auth').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = false;
}

/** Whether the server takes `candidate` as the admin token. */
async function check(candidate) {
  token.set(candidate);
  try {
    await request('GET', '/api/admin/events', { retries: 0 });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      token.clear();
      return false;
    }
    // Some other failure (a service down): the token was not refused.
    return true;
  }
}

async function signIn(event) {
  event.preventDefault();
  const input = $('auth-token');
  const candidate = input.value.trim();
  const submit = $('auth-form').querySelector('[type="submit"]');
  if (!candidate) {
    input.setAttribute('aria-invalid', 'true');
    status($('auth-error'), 'Enter the admin token.', 'error');
    input.focus();
    return;
  }
  submit.disabled = true;
  status($('auth-error'), 'Checking…', 'busy');
  try {
    if (!(await check(candidate))) {
      showAuth('That token was refused (401). Check it and try again.');
      return;
    }
    input.removeAttribute('aria-invalid');
    input.value = '';
    showConsole();
    $('main').focus();
    if (waiting) {
      // Requests refused mid-way go on by themselves with the new token.
      const { resolve } = waiting;
      waiting = null;
      resolve();
    } else {
      loadAll();
    }
  } catch (error) {
    status($('auth-error'), errorText(error), 'error');
  } finally {
    submit.disabled = false;
  }
}

function loadAll() {
  loadStock();
  loadEvents();
  fromHash();
}

onUnauthorized((message) => new Promise((resolve) => {
  waiting = { resolve };
  const said = String(message || 'The admin token was refused').replace(/[.\s]*$/, '');
  showAuth(`${said[0].toUpperCase()}${said.slice(1)}. Enter the admin token again.`);
}));

function start() {
  $('auth-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => {
    token.clear();
    waiting = null;
    showAuth('');
  });
  initStock();
  initEvents({ showCheckouts: setOutboxCheckouts });
  initSaga();
  if (token.get()) {
    showConsole();
    loadAll();
  } else {
    showAuth('');
  }
}

start();
