// A checkout's saga as a graph, the way a workflow console draws an
// execution: one node per step, top to bottom in the saga's order, arrows
// between, each node coloured by its outcome; the compensations are the
// path back, return arrows on the right from the failed step up through
// every compensated step, each labelled with its compensation's name, time
// and duration. Built as inline SVG (no inline style: CSP `style-src 'self'`;
// colours come from css/admin.css classes).
//
// The steps and compensations are components/checkout/src/domain.rs's.

import { time, duration } from './admin-api.js';

/** The saga's steps in order (`Step::ALL`). */
export const STEPS = [
  'check_customer', 'load_cart', 'price_lines', 'quote_shipping', 'compute_tax',
  'reserve_stock', 'authorize_payment', 'create_order', 'empty_cart', 'publish_order_placed',
];

/** The steps that change another service's state, and what undoes them. */
export const COMPENSATIONS = { reserve_stock: 'release_stock', authorize_payment: 'void_payment', create_order: 'fail_order' };

/** Every outcome a node can show, with the legend's words. */
export const OUTCOMES = [
  ['ok', 'ok'],
  ['failed', 'failed'],
  ['compensated', 'compensated (done, then undone)'],
  ['running', 'running'],
  ['skipped', 'skipped (a guest has no customer to check)'],
  ['not_reached', 'not reached'],
];

const ICON = { ok: '✓', failed: '✕', compensated: '↩', running: '…', skipped: '–', not_reached: '' };

/**
 * What to draw, from `GET /api/checkout/{id}`:
 * `{ nodes: [{ name, index, outcome, step, compensation, pendingCompensation }],
 *    compensations: [node…] (in the order they ran), origin: node | null }`.
 */
export function sagaModel(checkout) {
  const steps = Array.isArray(checkout.steps) ? checkout.steps : [];
  const byName = new Map(steps.map((s) => [s.name, s]));
  const names = [...STEPS, ...steps.map((s) => s.name).filter((n) => !STEPS.includes(n))];
  const anyRun = steps.length > 0;
  const nodes = names.map((name, index) => {
    const step = byName.get(name) || null;
    let outcome;
    if (step) outcome = OUTCOMES.some(([o]) => o === step.outcome) ? step.outcome : 'running';
    else if (name === 'check_customer' && anyRun) outcome = 'skipped';
    else outcome = 'not_reached';
    const pendingCompensation = !!(step && !step.compensation && COMPENSATIONS[name]
      && checkout.status === 'compensating' && outcome !== 'not_reached');
    return { name, index, outcome, step, compensation: step?.compensation || null, pendingCompensation };
  });
  const compensations = nodes
    .filter((n) => n.compensation)
    .sort((a, b) => String(a.compensation.at).localeCompare(String(b.compensation.at)) || b.index - a.index);
  const pending = nodes.filter((n) => n.pendingCompensation).sort((a, b) => b.index - a.index);
  const reached = nodes.filter((n) => n.step);
  const origin = nodes.find((n) => n.outcome === 'failed') || reached[reached.length - 1] || null;
  const durations = steps.map((s) => s.duration_ms).filter((d) => typeof d === 'number');
  const firstStart = steps.length ? Math.min(...steps.map((s) => Date.parse(s.started_at)).filter((t) => !Number.isNaN(t))) : NaN;
  return { checkout, nodes, compensations, pending, origin, maxDuration: Math.max(1, ...durations), firstStart };
}

/** One sentence saying what happened, for the graph's accessible description. */
export function describe(model) {
  const { checkout, nodes, compensations } = model;
  const failed = nodes.find((n) => n.outcome === 'failed');
  const done = nodes.filter((n) => n.step).map((n) => `${n.name} ${n.outcome}`).join(', ');
  let text = `Checkout ${checkout.id} is ${checkout.status}. Steps: ${done || 'none yet'}.`;
  if (failed) text += ` It failed at ${failed.name}.`;
  if (compensations.length) text += ` Compensated, in order: ${compensations.map((n) => n.compensation.name).join(', ')}.`;
  return text;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Geometry (SVG user units = CSS px at the natural size).
const X0 = 24;            // nodes' left edge
const NODE_W = 252;
const NODE_H = 56;
const GAP = 30;           // the forward arrow's length
const TOP = 58;           // the first node's top (the start marker above it)
const XR = X0 + NODE_W;   // nodes' right edge: where the return path starts and ends
const LOOP = 58;          // a self-loop's reach to the right
const BULGE = 104;        // a return arrow's reach to the right
const WIDTH = XR + BULGE + 196;

const nodeTop = (i) => TOP + i * (NODE_H + GAP);
const nodeMid = (i) => nodeTop(i) + NODE_H / 2;

/** The graph of `model` as an `<svg>` element. */
export function renderSagaGraph(model) {
  const { nodes, compensations, pending, origin, checkout } = model;
  const height = nodeTop(nodes.length) + 48;
  const uid = `g${Math.random().toString(36).slice(2, 8)}`;
  const svg = s('svg', {
    xmlns: SVG_NS, viewBox: `0 0 ${WIDTH} ${height}`, width: WIDTH, height, class: 'saga-svg',
    role: 'img', 'aria-labelledby': `${uid}-title ${uid}-desc`, 'data-testid': 'saga-svg',
  });
  svg.append(
    s('title', { id: `${uid}-title` }, `Saga of ${checkout.id}`),
    s('desc', { id: `${uid}-desc` }, describe(model)),
    s('defs', {},
      marker(`${uid}-fwd`, 'saga-arrowhead'),
      marker(`${uid}-dim`, 'saga-arrowhead is-dim'),
      marker(`${uid}-back`, 'saga-arrowhead is-back')),
  );

  // Start marker and the first arrow.
  const cx = X0 + NODE_W / 2;
  svg.append(s('g', { class: 'saga-terminal' },
    s('rect', { x: cx - 34, y: 6, width: 68, height: 24, rx: 12 }),
    s('text', { x: cx, y: 22, 'text-anchor': 'middle' }, 'Start')));
  svg.append(s('path', { d: `M${cx} 30V${TOP - 2}`, class: `saga-edge${nodes[0]?.step || nodes[0]?.outcome === 'skipped' ? '' : ' is-dim'}`, 'marker-end': `url(#${uid}-${nodes[0]?.step || nodes[0]?.outcome === 'skipped' ? 'fwd' : 'dim'})` }));

  // Forward edges: solid where the saga went, dashed where it did not.
  nodes.forEach((node, i) => {
    if (i === nodes.length - 1) return;
    const next = nodes[i + 1];
    const taken = (node.step || node.outcome === 'skipped') && (next.step || next.outcome === 'skipped') && node.outcome !== 'failed';
    svg.append(s('path', {
      d: `M${cx} ${nodeTop(i) + NODE_H}V${nodeTop(i + 1) - 2}`,
      class: `saga-edge${taken ? '' : ' is-dim'}`, 'marker-end': `url(#${uid}-${taken ? 'fwd' : 'dim'})`,
    }));
  });

  nodes.forEach((node, i) => svg.append(nodeGroup(node, i, model)));

  // The end: completed below the last step; failed / running beside the origin.
  const endY = nodeTop(nodes.length) + 4;
  const lastTaken = nodes[nodes.length - 1].step;
  svg.append(s('path', { d: `M${cx} ${nodeTop(nodes.length - 1) + NODE_H}V${endY - 2}`, class: `saga-edge${lastTaken ? '' : ' is-dim'}`, 'marker-end': `url(#${uid}-${lastTaken ? 'fwd' : 'dim'})` }));
  svg.append(s('g', { class: `saga-terminal is-${checkout.status}`, 'data-testid': 'saga-end', 'data-status': checkout.status },
    s('rect', { x: cx - 60, y: endY, width: 120, height: 26, rx: 13 }),
    s('text', { x: cx, y: endY + 17, 'text-anchor': 'middle' }, checkout.status === 'completed' ? 'End · completed' : `End · ${checkout.status}`)));

  // The path back: from the origin up through each compensated step, in the
  // order the compensations ran, then any still to run (dashed).
  let from = origin;
  const back = [...compensations.map((n) => ({ node: n, done: true })), ...pending.map((n) => ({ node: n, done: false }))];
  for (const { node, done } of back) {
    if (!from) break;
    svg.append(returnArrow(from, node, done, uid));
    from = node;
  }
  return svg;
}

function marker(id, cls) {
  return s('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 10, markerHeight: 10, markerUnits: 'userSpaceOnUse', orient: 'auto-start-reverse' },
    s('path', { d: 'M0 0L10 5L0 10Z', class: cls }));
}

function nodeGroup(node, i, model) {
  const y = nodeTop(i);
  const step = node.step;
  const g = s('g', {
    class: `saga-node is-${node.outcome}`, 'data-testid': 'saga-node', 'data-step': node.name, 'data-outcome': node.outcome,
  });
  g.append(s('title', {}, tooltip(node)));
  g.append(s('rect', { x: X0, y, width: NODE_W, height: NODE_H, rx: 10, class: 'saga-box' }));
  g.append(s('text', { x: X0 + 14, y: y + 22, class: 'saga-name' }, `${i + 1}. ${node.name}`));
  const words = node.outcome === 'not_reached' ? 'not reached' : node.outcome;
  const took = step && typeof step.duration_ms === 'number' ? ` · ${duration(step.duration_ms)}` : step && node.outcome === 'running' ? ' · running' : '';
  g.append(s('text', { x: X0 + 14, y: y + 40, class: 'saga-meta', 'data-testid': 'saga-node-meta' }, `${words}${took}`));
  if (step && !Number.isNaN(model.firstStart)) {
    const offset = Date.parse(step.started_at) - model.firstStart;
    if (!Number.isNaN(offset)) g.append(s('text', { x: XR - 12, y: y + 40, 'text-anchor': 'end', class: 'saga-offset' }, `+${duration(offset)}`));
  }
  g.append(s('text', { x: XR - 12, y: y + 23, 'text-anchor': 'end', class: 'saga-icon', 'aria-hidden': 'true' }, ICON[node.outcome] || ''));
  if (step && typeof step.duration_ms === 'number') {
    // The step's share of the longest step, as a bar along the bottom.
    const w = Math.max(3, Math.round((NODE_W - 28) * (step.duration_ms / model.maxDuration)));
    g.append(s('rect', { x: X0 + 14, y: y + NODE_H - 9, width: w, height: 4, rx: 2, class: 'saga-bar', 'data-testid': 'saga-duration-bar' }));
  }
  return g;
}

function tooltip(node) {
  const step = node.step;
  if (!step) return `${node.name}: ${node.outcome === 'skipped' ? 'skipped' : 'not reached'}`;
  let text = `${node.name}: ${node.outcome}, started ${time(step.started_at)}, took ${duration(step.duration_ms)}`;
  if (node.compensation) text += `; ${node.compensation.name} at ${time(node.compensation.at)} (${duration(node.compensation.duration_ms)})`;
  return text;
}

/** A return arrow from node `from` to node `to` (the same node: a loop), labelled with `to`'s compensation. */
function returnArrow(from, to, done, uid) {
  const name = to.compensation?.name || COMPENSATIONS[to.name] || 'compensate';
  const g = s('g', { class: `saga-comp${done ? '' : ' is-pending'}`, 'data-testid': 'saga-compensation', 'data-compensation': name, 'data-step': to.name });
  const y1 = nodeMid(from.index);
  const y2 = nodeMid(to.index);
  let d;
  let labelX;
  let labelY;
  if (from.index === to.index) {
    d = `M${XR} ${y1 - 14}C${XR + LOOP} ${y1 - 46} ${XR + LOOP} ${y1 + 46} ${XR + 2} ${y1 + 14}`;
    labelX = XR + LOOP * 0.75 + 12;
    labelY = y1 + 2;
  } else {
    const a = y1 - 8;
    const b = y2 + 8;
    d = `M${XR} ${a}C${XR + BULGE} ${a} ${XR + BULGE} ${b} ${XR + 2} ${b}`;
    labelX = XR + BULGE * 0.75 + 10;
    labelY = (a + b) / 2 - 4;
  }
  g.append(s('path', { d, class: 'saga-back', 'marker-end': `url(#${uid}-back)` }));
  const when = done ? `${time(to.compensation.at, { date: false })} · ${duration(to.compensation.duration_ms)}` : 'still to run';
  g.append(s('text', { x: labelX, y: labelY, class: 'saga-comp-name' }, `↩ ${name}`));
  g.append(s('text', { x: labelX, y: labelY + 15, class: 'saga-comp-time', 'data-testid': 'saga-compensation-time' }, when));
  return g;
}
