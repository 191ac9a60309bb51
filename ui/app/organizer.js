// The organizer's pages: creating an event from a form with a live preview of its seat map, the
// organizer's own events, and a live sale dashboard (availability and seat changes per second from
// the subscriptions; conversion, revenue, sales velocity and demand per row from the analytics
// reports; the live holds). Charts are uPlot's (vendored).

import { gql, session, plainWords, money, newKey } from './api.js';
import { h, show, when, navigate } from './dom.js';
import { SeatMap, SeatStatus, keepLive } from './seatmap.js';
import { EVENT_FIELDS } from './buyer.js';

const ROW_LABELS = 'ABCDEFGHJKLMNOPQRSTUVWXYZ';
const rowLabel = (i) => (i < ROW_LABELS.length ? ROW_LABELS[i] : `${ROW_LABELS[Math.floor(i / ROW_LABELS.length) - 1]}${ROW_LABELS[i % ROW_LABELS.length]}`);

function isOrganizer() {
  const role = session.claims?.role;
  return role === 'organizer' || role === 'admin';
}

/** The layout the form describes, as GraphQL's LayoutInput and as a seat map's sections. */
function layoutOf(form) {
  const sections = [...form.querySelectorAll('fieldset.section')].map((f) => ({
    name: f.querySelector('[name=name]').value.trim(),
    priceTier: f.querySelector('[name=tier]').value.trim(),
    priceCents: Math.round(Number(f.querySelector('[name=price]').value) * 100),
    rows: Number(f.querySelector('[name=rows]').value),
    seats: Number(f.querySelector('[name=seats]').value),
  }));
  const tiers = new Map();
  for (const s of sections) if (!tiers.has(s.priceTier)) tiers.set(s.priceTier, s.priceCents);
  let next = 0;
  const mapSections = sections.map((s) => ({
    name: s.name,
    priceTier: s.priceTier,
    priceCents: tiers.get(s.priceTier),
    rows: Array.from({ length: Math.max(0, Math.min(s.rows, 1000)) }, (_, i) => {
      const row = { label: rowLabel(i), seats: Math.max(1, Math.min(s.seats, 10000)), firstSeatId: next };
      next += row.seats;
      return row;
    }),
  }));
  const input = {
    priceTiers: [...tiers].map(([name, priceCents]) => ({ name, priceCents })),
    sections: mapSections.map((s) => ({ name: s.name, priceTier: s.priceTier, rows: s.rows.map((r) => ({ label: r.label, seats: r.seats })) })),
  };
  return { input, preview: { sections: mapSections, priceTiers: input.priceTiers, seatCount: next } };
}

function sectionFields(name, tier, price, rows, seats) {
  const field = (label, attrs) => h('label', {}, `${label} `, h('input', attrs));
  const set = h('fieldset', { class: 'section' }, h('legend', {}, 'Section'),
    field('Name', { name: 'name', value: name, required: true, maxlength: '64' }),
    field('Price tier', { name: 'tier', value: tier, required: true, maxlength: '64' }),
    field('Price', { name: 'price', type: 'number', min: '0', step: '0.01', value: price, required: true }),
    field('Rows', { name: 'rows', type: 'number', min: '1', max: '1000', value: rows, required: true }),
    field('Seats per row', { name: 'seats', type: 'number', min: '1', max: '10000', value: seats, required: true }));
  set.append(h('button', { type: 'button', class: 'secondary', onclick: () => { set.remove(); set.dispatchEvent(new Event('input', { bubbles: true })); } }, 'Remove section'));
  return set;
}

export async function organizerPage() {
  if (!isOrganizer()) {
    show(h('h1', {}, 'Organizer'), h('p', {}, h('a', { href: '/login?next=/organizer' }, 'Sign in as an organizer'), ' to create events and watch their sales.'));
    return;
  }
  const error = h('p', { class: 'error', role: 'alert' });
  const sections = h('div', { class: 'sections' },
    sectionFields('Stalls', 'Standard', '45.00', 12, 24),
    sectionFields('Balcony', 'Balcony', '30.00', 6, 30));
  const canvas = h('canvas', { 'aria-label': 'Preview of the seat map' });
  const previewWrap = h('div', { class: 'map-wrap preview' }, canvas);
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  const form = h('form', { class: 'create', id: 'create-event' },
    h('label', {}, 'Name ', h('input', { name: 'eventName', required: true, maxlength: '200', id: 'event-name' })),
    h('label', {}, 'Venue ', h('input', { name: 'venue', maxlength: '200' })),
    h('label', {}, 'Starts ', h('input', { name: 'startsAt', type: 'datetime-local' })),
    h('label', {}, 'Currency ', h('input', { name: 'currency', value: 'EUR', pattern: '[A-Z]{3}', maxlength: '3', size: '4' })),
    h('label', {}, 'Hold minutes ', h('input', { name: 'holdMinutes', type: 'number', min: '1', max: '60', value: '10' })),
    h('label', {}, 'Seats per buyer ', h('input', { name: 'maxSeats', type: 'number', min: '1', max: '100', value: '10' })),
    sections,
    h('button', { type: 'button', class: 'secondary', onclick: () => { sections.append(sectionFields(`Section ${sections.children.length + 1}`, 'Standard', '45.00', 5, 20)); preview(); } }, 'Add a section'),
    summary, previewWrap,
    h('button', { id: 'create-submit' }, 'Create the event'), error);
  function preview() {
    const { preview: p } = layoutOf(form);
    summary.textContent = `${p.seatCount.toLocaleString('en')} seats in ${p.sections.length} section(s)`;
    if (!p.sections.length || !p.seatCount) return;
    const map = new SeatMap(canvas, { ...p, currency: form.currency.value || 'EUR' }, {
      width: Math.max(previewWrap.clientWidth, 300), money: (c) => money(c, /^[A-Z]{3}$/.test(form.currency.value) ? form.currency.value : 'EUR'),
    });
    map.drawAll();
  }
  form.addEventListener('input', preview);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { input: layout } = layoutOf(form);
    const input = {
      name: form.eventName.value.trim(),
      venue: form.venue.value.trim() || null,
      startsAt: form.startsAt.value ? new Date(form.startsAt.value).toISOString() : null,
      currency: form.currency.value || null,
      holdSeconds: Math.round(Number(form.holdMinutes.value) * 60),
      maxSeatsPerCustomer: Number(form.maxSeats.value),
      layout,
    };
    try {
      const { createEvent } = await gql('mutation($input: CreateEventInput!, $key: String) { createEvent(input: $input, idempotencyKey: $key) { id } }', { input, key: newKey() });
      navigate(`/organizer/events/${createEvent.id}`);
    } catch (err) {
      error.textContent = plainWords(err);
    }
  });
  const mine = h('ul', { class: 'events' }, h('li', {}, 'Loading...'));
  show(h('h1', {}, 'Organizer'), h('h2', {}, 'Your events'), mine, h('h2', {}, 'Create an event'), form);
  preview();
  try {
    const items = [];
    let after = null;
    for (let page = 0; page < 20; page++) {
      const { events } = await gql(`query($after: String) { events(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor } nodes { id name startsAt seatCount manageable } } }`, { after });
      for (const e of events.nodes.filter((x) => x.manageable)) {
        items.push(h('li', {}, h('a', { href: `/organizer/events/${e.id}` }, e.name), h('span', { class: 'muted' }, [when(e.startsAt), `${e.seatCount.toLocaleString('en')} seats`].filter(Boolean).join(' · ')), h('a', { href: `/events/${e.id}` }, 'buyer page')));
      }
      if (!events.pageInfo.hasNextPage) break;
      after = events.pageInfo.endCursor;
    }
    mine.replaceChildren(...(items.length ? items : [h('li', {}, 'None yet.')]));
  } catch (err) {
    mine.replaceChildren(h('li', { class: 'error' }, plainWords(err)));
  }
}

function chart(el, title, series, width) {
  return new globalThis.uPlot({
    title, width, height: 220,
    scales: { x: { time: true } },
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
  }, [[], ...series.map(() => [])], el);
}

export async function dashboardPage(id, { signal }) {
  if (!isOrganizer()) {
    show(h('h1', {}, 'Sale dashboard'), h('p', {}, h('a', { href: `/login?next=/organizer/events/${id}` }, 'Sign in as an organizer'), ' to watch this sale.'));
    return;
  }
  const { event } = await gql(`query($id: UUID!) { event(id: $id) { ${EVENT_FIELDS} manageable } }`, { id });
  if (!event) {
    show(h('h1', {}, 'No such event'));
    return;
  }
  const fmt = (c) => money(c, event.currency);
  const tiles = h('div', { class: 'tiles', 'aria-live': 'off' });
  const liveChart = h('div', { class: 'chart' });
  const velocityChart = h('div', { class: 'chart' });
  const figures = h('div', { class: 'figures' });
  const heat = h('table', { class: 'heat' });
  const holdsTable = h('table', { class: 'holds', id: 'live-holds' });
  const note = h('p', { class: 'muted' });
  show(h('h1', {}, `Sale: ${event.name}`),
    h('p', {}, h('a', { href: `/events/${id}` }, 'Buyer page'), ' · ', h('a', { href: '/organizer' }, 'All your events')),
    tiles, h('h2', {}, 'Seats changing per second (live)'), liveChart,
    h('h2', {}, 'Sales per minute'), velocityChart, note, figures,
    h('h2', {}, 'Demand per row'), heat,
    h('h2', {}, 'Live holds and bookings'), holdsTable);
  const width = Math.max(300, Math.min(900, document.getElementById('main').clientWidth - 20));
  const live = chart(liveChart, 'held / booked / released per second', [['held', '#f59e0b'], ['booked', '#2563eb'], ['available again', '#16a34a']], width);
  const velocity = chart(velocityChart, 'seats per minute', [['held', '#f59e0b'], ['booked', '#2563eb']], width);

  // Live availability: every seat's status and its changes, not drawn.
  const seats = new SeatStatus(event.seatCount);
  const perSecond = new Map(); // second -> [held, booked, available]
  let holdsDirty = true;
  let revenue = null;
  function renderTiles() {
    const c = seats.counts;
    const tile = (label, value) => h('div', { class: 'tile' }, h('span', { class: 'value' }, value), h('span', {}, label));
    tiles.replaceChildren(
      tile('available', c.available.toLocaleString('en')),
      tile('held', c.held.toLocaleString('en')),
      tile('booked', c.booked.toLocaleString('en')),
      tile('revenue', revenue === null ? '...' : revenue === undefined ? 'n/a' : fmt(revenue)));
    tiles.dataset.held = c.held;
  }
  const stopSeats = await keepLive(id, seats, {
    onLoad: renderTiles,
    onChange: (c) => {
      const s = Math.floor(Date.now() / 1000);
      const row = perSecond.get(s) ?? [0, 0, 0];
      row[{ HELD: 0, BOOKED: 1, AVAILABLE: 2 }[c.status]] += 1;
      perSecond.set(s, row);
      holdsDirty = true;
      renderTiles();
    },
  });

  function drawLive() {
    const now = Math.floor(Date.now() / 1000);
    const xs = [];
    const ys = [[], [], []];
    for (let s = now - 119; s <= now; s++) {
      xs.push(s);
      const row = perSecond.get(s) ?? [0, 0, 0];
      ys.forEach((y, i) => y.push(row[i]));
    }
    for (const s of perSecond.keys()) if (s < now - 120) perSecond.delete(s);
    live.setData([xs, ...ys]);
  }

  async function refreshHolds() {
    if (!holdsDirty) return;
    holdsDirty = false;
    const { event: e } = await gql(`query($id: UUID!) { event(id: $id) { holds(first: 50, live: true) {
      nodes { id customerId status expiresAt totalCents seats { row seat } } } } }`, { id });
    const rows = e.holds.nodes.map((x) => h('tr', {},
      h('td', {}, x.customerId), h('td', {}, x.status.toLowerCase()),
      h('td', {}, x.seats.map((s) => `${s.row}${s.seat}`).join(' ')), h('td', {}, fmt(x.totalCents)),
      h('td', {}, x.status === 'HELD' ? new Date(x.expiresAt).toLocaleTimeString('en') : '')));
    holdsTable.replaceChildren(h('tr', {}, ['Customer', 'Status', 'Seats', 'Total', 'Expires'].map((t) => h('th', {}, t))),
      ...(rows.length ? rows : [h('tr', {}, h('td', { colspan: '5' }, 'No live holds.'))]));
  }

  async function refreshReports() {
    try {
      const { analytics: a } = await gql(`query($id: UUID!) { analytics {
        salesVelocity(eventId: $id) { minute seatsHeld seatsBooked }
        conversion(eventId: $id) { holds booked expired released conversionRate expiryRate }
        orders(eventId: $id) { orders confirmed paymentFailed revenueCents timeToPayP50Ms }
        demandHeat(eventId: $id) { section row seatHolds seatsBooked } } }`, { id });
      // Every minute of the last half hour (or since the first sale), quiet ones as zeros.
      const byMinute = new Map(a.salesVelocity.map((m) => [new Date(m.minute).getTime() / 1000, m]));
      const now = Math.floor(Date.now() / 60000) * 60;
      const first = Math.min(now - 29 * 60, ...byMinute.keys());
      const minutes = [];
      for (let t = first; t <= now; t += 60) minutes.push(t);
      velocity.setData([minutes, minutes.map((t) => byMinute.get(t)?.seatsHeld ?? 0),
        minutes.map((t) => byMinute.get(t)?.seatsBooked ?? 0)]);
      revenue = a.orders.revenueCents;
      renderTiles();
      const pct = (x) => `${(x * 100).toFixed(1)} %`;
      figures.replaceChildren(h('ul', {},
        h('li', {}, `Holds: ${a.conversion.holds}, booked ${a.conversion.booked} (conversion ${pct(a.conversion.conversionRate)}), expired ${a.conversion.expired} (${pct(a.conversion.expiryRate)}), released ${a.conversion.released}`),
        h('li', {}, `Orders: ${a.orders.orders}, confirmed ${a.orders.confirmed}, payments failed ${a.orders.paymentFailed}${a.orders.timeToPayP50Ms === null ? '' : `, median time to pay ${(a.orders.timeToPayP50Ms / 1000).toFixed(1)} s`}`)));
      const top = a.demandHeat.slice(0, 20);
      const most = Math.max(1, ...top.map((r) => r.seatHolds));
      heat.replaceChildren(h('tr', {}, ['Section', 'Row', 'Seat holds', 'Booked'].map((t) => h('th', {}, t))),
        ...top.map((r) => h('tr', { style: `background: rgba(220, 38, 38, ${(0.08 + 0.5 * r.seatHolds / most).toFixed(2)})` },
          h('td', {}, r.section), h('td', {}, r.row), h('td', {}, r.seatHolds), h('td', {}, r.seatsBooked))));
      note.textContent = 'Reports are a few seconds behind the sale (they come from the analytics store).';
    } catch (e) {
      revenue = undefined;
      renderTiles();
      note.textContent = `Reports are not available: ${plainWords(e)}`;
    }
  }
  const timers = [setInterval(drawLive, 1000), setInterval(() => refreshHolds().catch(() => {}), 1000), setInterval(refreshReports, 5000)];
  drawLive();
  refreshHolds().catch(() => {});
  refreshReports();
  signal.addEventListener('abort', () => {
    timers.forEach(clearInterval);
    stopSeats();
  });
}
