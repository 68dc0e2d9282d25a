// Events across services: what is due and delivered (GET /api/admin/events,
// GET /api/admin/outbox), dead letters (GET /api/admin/dead-letters) with
// replay (POST /api/admin/dead-letters/{id}/replay), and the outbox flush
// (POST /api/admin/outbox/flush).

import { request, h, clear, status, announce, errorText, age, time } from './admin-api.js';

const $ = (id) => document.getElementById(id);
let onCheckoutIds = () => {};
let loading = null;

/** `showCheckouts(ids)` is told the checkout ids the outboxes mention. */
export function initEvents({ showCheckouts }) {
  onCheckoutIds = showCheckouts;
  $('events-refresh').addEventListener('click', () => loadEvents());
  $('outbox-flush').addEventListener('click', flush);
  $('dead-letters-status').addEventListener('change', () => loadDeadLetters());
}

export function loadEvents() {
  if (loading) return loading;
  loading = (async () => {
    const line = $('events-status');
    status(line, 'Loading…', 'busy');
    $('events-refresh').disabled = true;
    const [summary, outbox] = await Promise.allSettled([
      request('GET', '/api/admin/events'),
      request('GET', '/api/admin/outbox'),
      loadDeadLetters(),
    ]);
    const problems = [];
    if (summary.status === 'fulfilled') renderSummary(summary.value, outbox.status === 'fulfilled' ? outbox.value : null);
    else problems.push(`events: ${errorText(summary.reason)}`);
    if (outbox.status === 'fulfilled') renderOutbox(outbox.value);
    else problems.push(`outbox: ${errorText(outbox.reason)}`);
    status(line, problems.length ? `Could not load ${problems.join('; ')}` : `Read ${new Date().toLocaleTimeString()}`, problems.length ? 'error' : '');
    $('events-refresh').disabled = false;
    loading = null;
  })();
  return loading;
}

function stat(label, value, testid, kind = '') {
  return h('div', { class: `adm-stat${kind ? ` adm-stat-${kind}` : ''}`, dataset: { testid } },
    h('span', { class: 'adm-stat-value' }, value), h('span', { class: 'adm-stat-label' }, label));
}

function renderSummary(events, outbox) {
  const box = clear($('events-summary'));
  box.append(
    stat('events due', events.due, 'events-due', events.due > 0 ? 'warn' : ''),
    stat('oldest due', age(events.oldest_due_age_seconds), 'events-oldest'),
    stat('re-publishes', events.republishes, 'events-republishes'),
    stat('undeliverable', events.undeliverable, 'events-undeliverable', events.undeliverable > 0 ? 'bad' : ''),
    stat('dead letters pending', events.dead_letters_pending, 'events-dead-letters', events.dead_letters_pending > 0 ? 'bad' : ''),
  );
  if (!events.complete) box.append(h('p', { class: 'adm-error', dataset: { testid: 'events-incomplete' } }, 'Some services did not answer: the totals count only those that did.'));

  const pendingOf = new Map((outbox?.services || []).map((s) => [s.name, s.pending]));
  const body = clear($('events-services'));
  for (const service of events.services) {
    const o = service.outbox;
    const d = service.dead_letters;
    const note = !service.ok ? h('span', { class: 'adm-error-text' }, typeof service.error === 'string' ? service.error : JSON.stringify(service.error))
      : o?.oldest_due_error ? h('span', { class: 'adm-warn-text' }, o.oldest_due_error) : '';
    body.append(h('tr', { dataset: { testid: 'events-service-row', service: service.name } },
      h('th', { scope: 'row' }, service.name, service.ok ? '' : h('span', { class: 'adm-pill adm-pill-bad' }, 'down')),
      h('td', { class: `num${o?.due ? ' adm-low' : ''}`, dataset: { testid: 'service-due' } }, o ? o.due : (pendingOf.get(service.name) ?? '—')),
      h('td', { class: 'num' }, o ? age(o.oldest_due_age_seconds) : '—'),
      h('td', { class: 'num', dataset: { testid: 'service-delivered' } }, o ? o.delivered : '—'),
      h('td', { class: 'num' }, o ? o.publishes : '—'),
      h('td', { class: 'num' }, o ? o.republishes : '—'),
      h('td', { class: 'num' }, o ? o.undeliverable : '—'),
      h('td', { class: 'num', dataset: { testid: 'service-dead-letters' } }, d ? `${d.pending} / ${d.replayed}` : '—'),
      h('td', {}, note)));
  }
}

function renderOutbox(outbox) {
  const list = clear($('outbox-list'));
  const checkoutIds = [];
  for (const service of outbox.services) {
    const recent = service.recent || [];
    for (const entry of recent) {
      if (entry.correlation_id?.startsWith('chk_') && !checkoutIds.includes(entry.correlation_id)) checkoutIds.push(entry.correlation_id);
    }
    const summary = h('summary', {},
      h('strong', {}, service.name), ' — ',
      service.ok ? `${service.pending ?? 0} due, ${recent.length} recent` : h('span', { class: 'adm-error-text' }, `not available: ${typeof service.error === 'string' ? service.error : JSON.stringify(service.error)}`));
    const details = h('details', { class: 'adm-details', dataset: { testid: 'outbox-service', service: service.name } }, summary);
    if (recent.length) {
      details.append(h('div', { class: 'adm-scroll' }, h('table', { class: 'adm-table adm-table-compact' },
        h('thead', {}, h('tr', {}, ...['Event', 'Type', 'Checkout / correlation', 'Created', 'State', 'Publishes', 'Consumers', 'Last error'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...recent.map(entryRow)))));
    } else if (service.ok) {
      details.append(h('p', { class: 'adm-muted' }, 'Nothing in this outbox.'));
    }
    list.append(details);
  }
  onCheckoutIds(checkoutIds);
}

function entryRow(entry) {
  const state = entry.dead_at ? ['dead', 'bad', `since ${time(entry.dead_at)}`]
    : entry.delivered_at ? ['delivered', 'ok', `at ${time(entry.delivered_at)}`]
      : ['due', 'warn', entry.next_attempt_at ? `next try ${time(entry.next_attempt_at)}` : 'not sent yet'];
  const correlation = entry.correlation_id?.startsWith('chk_')
    ? h('a', { href: `#saga=${encodeURIComponent(entry.correlation_id)}`, dataset: { testid: 'outbox-checkout-link' } }, entry.correlation_id)
    : h('code', {}, entry.correlation_id);
  return h('tr', { dataset: { testid: 'outbox-entry', state: state[0] } },
    h('td', {}, h('code', {}, entry.id)),
    h('td', {}, entry.type),
    h('td', {}, correlation),
    h('td', {}, time(entry.created_at)),
    h('td', {}, h('span', { class: `adm-pill adm-pill-${state[1]}`, title: state[2] }, state[0]), ' ', h('span', { class: 'adm-muted small' }, state[2])),
    h('td', { class: 'num' }, entry.publishes),
    h('td', {}, (entry.awaiting || []).join(', ') || '—'),
    h('td', { class: 'adm-error-text' }, entry.last_error || ''));
}

export async function loadDeadLetters() {
  const wanted = $('dead-letters-status').value;
  const body = $('dead-letters-body');
  try {
    const answer = await request('GET', `/api/admin/dead-letters${wanted ? `?status=${wanted}` : ''}`);
    clear(body);
    $('dead-letters-empty').hidden = answer.dead_letters.length > 0;
    body.closest('table').hidden = answer.dead_letters.length === 0;
    for (const letter of answer.dead_letters) body.append(...deadLetterRows(letter));
    const missing = answer.services.filter((s) => !s.ok).map((s) => s.name);
    if (missing.length) body.append(h('tr', {}, h('td', { colspan: 8, class: 'adm-error-text' }, `Not answering: ${missing.join(', ')}`)));
  } catch (error) {
    body.closest('table').hidden = false;
    clear(body).append(h('tr', {}, h('td', { colspan: 8, class: 'adm-error-text' }, `Could not load dead letters: ${errorText(error)}`)));
  }
}

function deadLetterRows(letter) {
  const envelopeId = `dl-envelope-${letter.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const replay = letter.status === 'pending'
    ? h('button', { type: 'button', class: 'adm-btn adm-btn-small', dataset: { testid: 'dead-letter-replay' } }, 'Replay')
    : h('span', { class: 'adm-muted small' }, `replayed ${time(letter.replayed_at)}`);
  if (letter.status === 'pending') replay.addEventListener('click', () => replayLetter(letter, replay));
  const toggle = h('button', { type: 'button', class: 'adm-btn adm-btn-quiet adm-btn-small', 'aria-expanded': 'false', 'aria-controls': envelopeId, dataset: { testid: 'dead-letter-envelope-toggle' } }, 'Envelope');
  const envelopeRow = h('tr', { id: envelopeId, class: 'adm-envelope', hidden: true },
    h('td', { colspan: 8 }, h('pre', { class: 'adm-pre' }, typeof letter.envelope === 'string' ? letter.envelope : JSON.stringify(letter.envelope, null, 2))));
  toggle.addEventListener('click', () => {
    const open = envelopeRow.hidden;
    envelopeRow.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
  });
  const correlation = letter.envelope?.correlation_id;
  return [h('tr', { dataset: { testid: 'dead-letter-row', id: letter.id, status: letter.status } },
    h('th', { scope: 'row' }, letter.service),
    h('td', {}, h('div', {}, letter.type), h('code', { class: 'small' }, letter.event_id),
      correlation?.startsWith('chk_') ? h('div', {}, h('a', { href: `#saga=${encodeURIComponent(correlation)}`, class: 'small' }, correlation)) : null),
    h('td', {}, letter.origin),
    h('td', { class: 'adm-error-text' }, letter.error),
    h('td', { class: 'num' }, letter.attempts),
    h('td', {}, h('span', { class: `adm-pill adm-pill-${letter.status === 'pending' ? 'bad' : 'ok'}` }, letter.status)),
    h('td', {}, time(letter.updated_at)),
    h('td', { class: 'adm-actions' }, replay, toggle)), envelopeRow];
}

async function replayLetter(letter, button) {
  const line = $('replay-result');
  button.disabled = true;
  status(line, `Replaying ${letter.id}…`, 'busy');
  try {
    const result = await request('POST', `/api/admin/dead-letters/${encodeURIComponent(letter.id)}/replay`);
    status(line, `${letter.id}: ${result.outcome.replace('_', ' ')}`, 'ok');
    announce(`Dead letter replayed: ${result.outcome}`);
    await loadEvents();
  } catch (error) {
    status(line, `Replay of ${letter.id} failed: ${errorText(error)}`, 'error');
    button.disabled = false;
  }
}

async function flush() {
  const line = $('flush-result');
  const button = $('outbox-flush');
  button.disabled = true;
  status(line, 'Flushing every outbox…', 'busy');
  try {
    const result = await request('POST', '/api/admin/outbox/flush');
    const per = result.services.map((s) => (s.ok ? `${s.name} ${s.published ?? 0}` : `${s.name} failed`)).join(', ');
    status(line, `Published ${result.published}, ${result.pending} still due${result.complete ? '' : ' (some services did not answer)'} — ${per}`, result.complete ? 'ok' : 'error');
    announce(`Flushed: ${result.published} published, ${result.pending} due`);
    await loadEvents();
  } catch (error) {
    status(line, `Flush failed: ${errorText(error)}`, 'error');
  } finally {
    button.disabled = false;
  }
}
