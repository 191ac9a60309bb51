// The buyer's pages: the event list, an event's live seat map with holding and checkout, and
// "my tickets". Everything goes through the public GraphQL API with the signed-in buyer's token.

import { gql, subscribe, session, plainWords, money, newKey } from './api.js';
import { h, show, when } from './dom.js';
import { SeatMap, COLOURS, keepLive, tierColours } from './seatmap.js';

export const EVENT_FIELDS = `id name venue startsAt currency holdSeconds maxSeatsPerCustomer seatCount
  priceTiers { name priceCents }
  sections { name priceTier priceCents rows { label seats firstSeatId } }`;
const HOLD_FIELDS = 'id status expiresAt totalCents seats { seatId section row seat priceCents }';
const ORDER_FIELDS = 'id status amountCents currency paymentDue paymentUrl refundReason holdIds';

export async function eventList() {
  const list = h('ul', { class: 'events' });
  const more = h('button', { hidden: true }, 'More events');
  let after = null;
  async function page() {
    const data = await gql(`query($after: String) { events(first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id name venue startsAt seatCount currency availability { available held booked } } } }`, { after });
    for (const e of data.events.nodes) {
      const avail = e.availability ? `${e.availability.available.toLocaleString('en')} of ${e.seatCount.toLocaleString('en')} seats available` : `${e.seatCount.toLocaleString('en')} seats`;
      list.append(h('li', {},
        h('a', { href: `/events/${e.id}` }, e.name),
        h('span', { class: 'muted' }, [e.venue, when(e.startsAt)].filter(Boolean).join(' · ')),
        h('span', { class: 'avail' }, avail)));
    }
    after = data.events.pageInfo.endCursor;
    more.hidden = !data.events.pageInfo.hasNextPage;
  }
  more.addEventListener('click', () => page().catch(() => {}));
  show(h('h1', {}, 'Events'), h('p', {}, 'Loading the events...'));
  try {
    await page();
    show(h('h1', {}, 'Events'),
      list.children.length ? list : h('p', {}, 'No events yet. An organizer creates them on the Organizer page.'),
      more);
  } catch (e) {
    show(h('h1', {}, 'Events'), h('p', { class: 'error', role: 'alert' }, plainWords(e)));
  }
}

/** An event's page: the seat map, kept live, and the buyer's holds and order. */
export async function eventPage(id, { signal }) {
  const started = performance.now();
  show(h('p', {}, 'Loading the event...'));
  let event;
  try {
    event = (await gql(`query($id: UUID!) { event(id: $id) { ${EVENT_FIELDS} } }`, { id })).event;
  } catch (e) {
    show(h('h1', {}, 'Event'), h('p', { class: 'error', role: 'alert' }, plainWords(e)));
    return;
  }
  if (!event) {
    show(h('h1', {}, 'No such event'), h('p', {}, h('a', { href: '/' }, 'See all events')));
    return;
  }
  const fmt = (c) => money(c, event.currency);
  const message = h('p', { class: 'message', role: 'alert' });
  const say = (text, kind = 'info') => {
    message.textContent = text;
    message.className = `message ${kind}`;
  };
  const spoken = h('p', { class: 'sr-only', 'aria-live': 'polite' });
  const counts = h('p', { class: 'counts', 'aria-live': 'off' });
  const canvas = h('canvas', {
    tabindex: '0', role: 'application', id: 'seat-map',
    'aria-label': 'Seat map. Arrow keys move from seat to seat, Enter or Space picks a seat.',
    'aria-describedby': 'seat-focus',
  });
  spoken.id = 'seat-focus';
  const wrap = h('div', { class: 'map-wrap' }, canvas);
  // Large venues fit the width with small seats: zoom to pick them comfortably.
  const zoom = (factor) => {
    const focused = map.focused;
    map.setZoom(map.zoom * factor);
    if (focused !== null) {
      const c = map.seatCentre(focused);
      wrap.scrollTo({ left: c.x - wrap.clientWidth / 2, top: c.y - wrap.clientHeight / 2 });
    }
  };
  const zoomBar = h('div', { class: 'zoom' },
    h('button', { class: 'secondary', id: 'zoom-out', 'aria-label': 'Smaller seats', onclick: () => zoom(0.5) }, '−'),
    h('button', { class: 'secondary', id: 'zoom-in', 'aria-label': 'Larger seats', onclick: () => zoom(2) }, '+'));
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    [...tierColours(event.priceTiers)].map(([name, colour], i) => h('li', {}, h('span', { class: 'swatch', style: `background:${colour}` }), `${name} ${fmt(event.priceTiers[i].priceCents)}`)),
    [['held', 'Held'], ['booked', 'Booked'], ['mine', 'Yours'], ['selected', 'Selected']].map(([k, w]) =>
      h('li', {}, h('span', { class: 'swatch', style: `background:${COLOURS[k]}` }), w)));
  const panel = h('aside', { class: 'panel', 'aria-label': 'Your seats' });
  show(
    h('h1', {}, event.name),
    h('p', { class: 'muted' }, [event.venue, when(event.startsAt), `holds last ${event.holdSeconds >= 60 ? `${Math.round(event.holdSeconds / 60)} min` : `${event.holdSeconds} s`}`, `at most ${event.maxSeatsPerCustomer} seats each`].filter(Boolean).join(' · ')),
    counts, legend,
    h('div', { class: 'event-body' }, h('div', {}, zoomBar, wrap), panel),
    spoken, message,
  );
  const map = new SeatMap(canvas, event, {
    width: Math.max(wrap.clientWidth, 320),
    money: fmt,
    onToggle: (seat) => toggle(seat),
    onFocus: (_, label) => { spoken.textContent = label; },
  });
  const holds = new Map(); // hold id -> { hold, stop }
  let order = null;
  let stopOrder = null;
  const showCounts = () => {
    const c = map.counts;
    counts.textContent = `${c.available.toLocaleString('en')} available · ${c.held.toLocaleString('en')} held · ${c.booked.toLocaleString('en')} booked`;
  };

  let stopSeats = () => {};
  try {
    stopSeats = await keepLive(id, map, {
      onLoad: showCounts,
      onChange: (c) => {
        showCounts();
        if (map.selected.delete(c.seatId)) {
          map.drawSeat(c.seatId);
          say(`${map.label(c.seatId)}: someone else just took it.`, 'warn');
          renderPanel();
        }
      },
    });
  } catch (e) {
    say(plainWords(e), 'error');
  }
  const firstRenderMs = performance.now() - started;
  signal.addEventListener('abort', () => {
    stopSeats();
    for (const { stop } of holds.values()) stop();
    if (stopOrder) stopOrder();
  });

  function toggle(seat) {
    if (!session.token) {
      say('Sign in to pick seats.', 'warn');
      return;
    }
    if (map.selected.has(seat)) map.selected.delete(seat);
    else if (map.mine.has(seat)) return say(`${map.label(seat)}.`);
    else if (map.statusOf(seat) !== 'A') return say(`${map.label(seat)}: pick another seat.`, 'warn');
    else if (map.selected.size >= Math.min(10, event.maxSeatsPerCustomer)) return say('That is as many seats as one hold may take.', 'warn');
    else map.selected.add(seat);
    map.drawSeat(seat);
    renderPanel();
  }

  function track(hold) {
    const known = holds.get(hold.id);
    if (known) {
      known.hold = hold;
    } else {
      const stop = subscribe(`subscription($id: UUID!) { hold(id: $id) { ${HOLD_FIELDS} } }`, { id: hold.id },
        ({ hold: update }) => track(update));
      holds.set(hold.id, { hold, stop });
    }
    const seats = hold.seats.map((s) => s.seatId);
    if (hold.status === 'HELD' || hold.status === 'PENDING') {
      seats.forEach((s) => map.mine.add(s));
    } else {
      seats.forEach((s) => map.mine.delete(s));
      holds.get(hold.id).stop();
      holds.delete(hold.id);
      const words = {
        EXPIRED: 'Your hold expired: its seats went back on sale.',
        RELEASED: 'Your hold was released: its seats are available again.',
        FAILED: 'Your hold did not go through.',
        BOOKED: 'Booked! Your tickets are in My tickets.',
      }[hold.status];
      if (words) say(words, hold.status === 'BOOKED' ? 'ok' : 'warn');
    }
    map.repaint(seats);
    renderPanel();
  }

  async function holdSelected() {
    const seats = [...map.selected];
    try {
      const { holdSeats } = await gql(`mutation($id: UUID!, $seats: [SeatInput!], $key: String) {
        holdSeats(eventId: $id, seats: $seats, idempotencyKey: $key) { ${HOLD_FIELDS} } }`,
      { id, seats: seats.map((seatId) => ({ seatId })), key: newKey() });
      map.selected.clear();
      window.seatgrid.heldAt = Date.now();
      track(holdSeats);
      say(`Held ${holdSeats.seats.length} seat(s) for you until ${new Date(holdSeats.expiresAt).toLocaleTimeString('en')}.`, 'ok');
    } catch (e) {
      say(plainWords(e), 'error');
    }
    map.repaint(seats);
    renderPanel();
  }

  async function holdBest(quantity, together, section) {
    try {
      const { holdSeats } = await gql(`mutation($id: UUID!, $n: Int, $together: Boolean, $section: String, $key: String) {
        holdSeats(eventId: $id, quantity: $n, together: $together, section: $section, idempotencyKey: $key) { ${HOLD_FIELDS} } }`,
      { id, n: quantity, together, section: section || null, key: newKey() });
      track(holdSeats);
      const first = holdSeats.seats[0];
      say(`Held ${holdSeats.seats.length} seat(s) for you from row ${first.row}, seat ${first.seat}.`, 'ok');
      const c = map.seatCentre(first.seatId);
      wrap.scrollTo({ left: c.x - wrap.clientWidth / 2, top: c.y - wrap.clientHeight / 2 });
    } catch (e) {
      say(plainWords(e), 'error');
    }
  }

  async function release(holdId) {
    try {
      track((await gql(`mutation($id: UUID!) { releaseHold(holdId: $id) { ${HOLD_FIELDS} } }`, { id: holdId })).releaseHold);
    } catch (e) {
      say(plainWords(e), 'error');
    }
  }

  function showOrder(update) {
    order = update;
    if (!stopOrder) {
      stopOrder = subscribe(`subscription($id: UUID!) { order(id: $id) { ${ORDER_FIELDS} } }`, { id: order.id },
        ({ order: next }) => showOrder(next));
    }
    if (['CONFIRMED', 'REFUNDED', 'EXPIRED', 'CANCELLED', 'PAYMENT_FAILED'].includes(order.status) && stopOrder) {
      stopOrder();
      stopOrder = null;
    }
    renderPanel();
  }

  async function checkout() {
    try {
      const { placeOrder } = await gql(`mutation($holds: [UUID!]!, $key: String) {
        placeOrder(holdIds: $holds, idempotencyKey: $key) { ${ORDER_FIELDS} } }`,
      { holds: [...holds.keys()], key: newKey() });
      if (stopOrder) stopOrder();
      stopOrder = null;
      showOrder(placeOrder);
    } catch (e) {
      say(plainWords(e), 'error');
    }
  }

  async function cancelOrder() {
    try {
      showOrder((await gql(`mutation($id: UUID!) { cancelOrder(orderId: $id) { ${ORDER_FIELDS} } }`, { id: order.id })).cancelOrder);
    } catch (e) {
      say(plainWords(e), 'error');
    }
  }

  const countdowns = [];
  function renderPanel() {
    countdowns.length = 0;
    const parts = [];
    if (!session.token) {
      parts.push(h('p', {}, h('a', { href: `/login?next=/events/${id}` }, 'Sign in'), ' to pick seats.'));
    } else {
      const picked = [...map.selected].sort((a, b) => a - b);
      parts.push(h('h2', {}, 'Pick seats'),
        picked.length
          ? h('ul', { class: 'seats' }, picked.map((s) => h('li', {}, map.label(s).replace(/, selected$/, ''))))
          : h('p', { class: 'muted' }, 'Click seats on the map, or use the keyboard on it.'),
        h('button', { id: 'hold-selected', disabled: picked.length === 0, onclick: holdSelected },
          picked.length ? `Hold ${picked.length} seat(s)` : 'Hold seats'));
      const n = h('select', { id: 'best-quantity', 'aria-label': 'How many seats' },
        Array.from({ length: Math.min(10, event.maxSeatsPerCustomer) }, (_, i) => h('option', { value: i + 1, selected: i === 1 }, i + 1)));
      const together = h('input', { type: 'checkbox', id: 'best-together', checked: true });
      const section = h('select', { id: 'best-section', 'aria-label': 'Section' },
        h('option', { value: '' }, 'any section'), event.sections.map((s) => h('option', { value: s.name }, s.name)));
      parts.push(h('form', {
        class: 'best',
        onsubmit: (e) => { e.preventDefault(); holdBest(Number(n.value), together.checked, section.value); },
      }, h('h2', {}, 'Or: best available'), n, ' seats in ', section, ' ',
      h('label', {}, together, ' together'), ' ', h('button', { id: 'hold-best' }, 'Find and hold')));
    }
    if (holds.size) {
      parts.push(h('h2', {}, 'Held for you'));
      for (const { hold } of holds.values()) {
        const left = h('span', { class: 'countdown', 'data-expires': hold.expiresAt });
        countdowns.push(left);
        parts.push(h('div', { class: 'hold', 'data-hold': hold.id },
          h('ul', { class: 'seats' }, hold.seats.map((s) => h('li', {}, `${event.sections.length > 1 ? `${s.section}, row` : 'Row'} ${s.row}, seat ${s.seat}, ${fmt(s.priceCents)}`))),
          h('p', {}, `Total ${fmt(hold.totalCents)} · `, left),
          h('button', { class: 'secondary', onclick: () => release(hold.id) }, 'Release')));
      }
      if (!order || ['EXPIRED', 'CANCELLED', 'PAYMENT_FAILED', 'REFUNDED'].includes(order.status)) {
        parts.push(h('button', { id: 'checkout', onclick: checkout }, order?.status === 'PAYMENT_FAILED' ? 'Try paying again' : 'Check out and pay'));
      }
    }
    if (order) parts.push(orderView());
    panel.replaceChildren(...parts);
    tick();
  }

  function orderView() {
    const words = {
      PENDING_PAYMENT: `Waiting for your payment (due by ${new Date(order.paymentDue).toLocaleTimeString('en')}).`,
      PAID: 'Payment received; booking your seats...',
      CONFIRMED: 'Confirmed! Your tickets are in My tickets.',
      PAYMENT_FAILED: 'Your payment was declined. Your seats stay held until the hold runs out: try again.',
      EXPIRED: 'No payment arrived in time; the seats went back on sale.',
      CANCELLED: 'Order cancelled; the seats went back on sale.',
      REFUND_PENDING: 'Your money is being given back.',
      REFUNDED: order.refundReason === 'SEATS_LOST'
        ? 'Your payment came after the seats had gone: it was refunded.'
        : 'Refunded.',
    }[order.status] ?? order.status;
    return h('div', { class: 'order', 'data-order-status': order.status },
      h('h2', {}, `Order: ${fmt(order.amountCents)}`),
      h('p', { role: 'status' }, words),
      order.paymentUrl && order.status === 'PENDING_PAYMENT' ? h('p', {}, h('a', { href: order.paymentUrl, target: '_blank', rel: 'noopener' }, 'Your payment at the provider')) : null,
      order.status === 'PENDING_PAYMENT' ? h('button', { class: 'secondary', onclick: cancelOrder }, 'Cancel order') : null);
  }

  function tick() {
    for (const el of countdowns) {
      const left = Math.max(0, Math.round((new Date(el.dataset.expires) - Date.now()) / 1000));
      el.textContent = left > 0 ? `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left` : 'expiring...';
    }
  }
  const ticker = setInterval(tick, 1000);
  signal.addEventListener('abort', () => clearInterval(ticker));

  // Holds this buyer already has here (after a reload), and their order.
  if (session.token) {
    try {
      const { customer } = await gql(`query($id: UUID!) { customer { holds(eventId: $id) { ${HOLD_FIELDS} }
        orders(eventId: $id) { ${ORDER_FIELDS} } } }`, { id });
      customer.holds.filter((x) => x.status === 'HELD').forEach(track);
      const open = customer.orders.find((o) => ['PENDING_PAYMENT', 'PAID'].includes(o.status));
      if (open) showOrder(open);
    } catch (e) {
      say(plainWords(e), 'error');
    }
  }
  renderPanel();
  // The page is ready: what tests and the render benchmark read.
  window.seatgrid = { map, event, firstRenderMs, readyMs: performance.now() - started };
}

export async function ticketsPage() {
  if (!session.token) {
    show(h('h1', {}, 'My tickets'), h('p', {}, h('a', { href: '/login?next=/tickets' }, 'Sign in'), ' to see your tickets.'));
    return;
  }
  show(h('h1', {}, 'My tickets'), h('p', {}, 'Loading...'));
  try {
    const { customer } = await gql(`{ customer {
      bookings { id totalCents seats { section row seat priceCents } event { id name venue startsAt currency } }
      orders { id status amountCents currency eventId } } }`);
    const tickets = customer.bookings.map((b) => h('li', { class: 'ticket' },
      h('a', { href: `/events/${b.event.id}` }, b.event.name),
      h('span', { class: 'muted' }, [b.event.venue, when(b.event.startsAt)].filter(Boolean).join(' · ')),
      h('ul', {}, b.seats.map((s) => h('li', {}, `${s.section}, row ${s.row}, seat ${s.seat}`))),
      h('span', {}, money(b.totalCents, b.event.currency))));
    const orders = customer.orders.map((o) => h('li', {}, `${money(o.amountCents, o.currency)}: ${o.status.toLowerCase().replace(/_/g, ' ')}`));
    show(h('h1', {}, 'My tickets'),
      tickets.length ? h('ul', { class: 'tickets' }, tickets) : h('p', {}, 'No tickets yet.'),
      orders.length ? h('h2', {}, 'Orders') : null,
      orders.length ? h('ul', {}, orders) : null);
  } catch (e) {
    show(h('h1', {}, 'My tickets'), h('p', { class: 'error', role: 'alert' }, plainWords(e)));
  }
}
