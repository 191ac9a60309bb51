// The seat map: every seat of an event drawn on one canvas, section by section and row by row in
// seat-id order (the layout's own order). A status change repaints one seat's cell, never the whole
// map, so a 100,000-seat event stays smooth while thousands of seats change. Pointer clicks and the
// keyboard (arrows, Home/End, Enter/Space) pick seats; the focused seat is announced in words.
// `SeatStatus` is the same state without drawing (the organizer's counts), and `keepLive` keeps
// either up to date from the `seatUpdates` subscription.

import { gql, subscribe, whenConnected, onReconnect } from './api.js';

export const COLOURS = {
  held: '#f59e0b',
  booked: '#9ca3af',
  mine: '#2563eb',
  selected: '#111827',
  background: '#ffffff',
  focus: '#dc2626',
};
const TIER_COLOURS = ['#16a34a', '#0d9488', '#7c3aed', '#db2777', '#65a30d', '#0891b2', '#ea580c', '#4f46e5'];

/** Each price tier's colour, in the order the event lists them. */
export function tierColours(priceTiers) {
  return new Map(priceTiers.map((t, i) => [t.name, TIER_COLOURS[i % TIER_COLOURS.length]]));
}
const STATUS_WORDS = { A: 'available', H: 'held', B: 'booked' };
const NAMES = { 65: 'available', 72: 'held', 66: 'booked' };
const TITLE = 22; // a section's title band, in CSS pixels
const LABEL = 34; // the row labels' column

/** Every seat's status (`A`/`H`/`B` per seat id), its version and the counts, kept by changes. */
export class SeatStatus {
  constructor(seatCount) {
    this.status = new Uint8Array(seatCount).fill(65); // 'A'
    this.version = -1;
    this.counts = { available: 0, held: 0, booked: 0 };
    this.changedAt = new Map(); // seat -> when its last live change arrived (Date.now())
  }

  /** The whole seat map, as the server sent it. */
  load(seats, version) {
    for (let i = 0; i < this.status.length && i < seats.length; i++) this.status[i] = seats.charCodeAt(i);
    this.version = version;
    this.counts = { available: 0, held: 0, booked: 0 };
    for (const code of this.status) this.counts[NAMES[code]] += 1;
  }

  /** One seat's change from `seatUpdates`; older than the loaded map is ignored. */
  apply(seat, status, version) {
    if (version <= this.version && this.version >= 0) return false;
    const code = { AVAILABLE: 65, HELD: 72, BOOKED: 66 }[status] ?? 65;
    if (this.status[seat] === code) return false;
    this.counts[NAMES[this.status[seat]]] -= 1;
    this.counts[NAMES[code]] += 1;
    this.status[seat] = code;
    this.changedAt.set(seat, Date.now());
    return true;
  }

  statusOf(seat) {
    return String.fromCharCode(this.status[seat]);
  }

  firstAvailable() {
    const i = this.status.indexOf(65);
    return i < 0 ? 0 : i;
  }
}

/**
 * Keeps `seats` (a SeatStatus or SeatMap) live for event `id`: the changes first, then the map, so
 * nothing between the two is missed (older changes are ignored); the map again after a reconnect.
 * `onChange(change)` follows each change applied, `onLoad()` each map loaded. Resolves, once the
 * first map is in, to the function that stops it all.
 */
export async function keepLive(id, seats, { onChange = () => {}, onLoad = () => {} } = {}) {
  const stopChanges = subscribe(
    'subscription($id: UUID!) { seatUpdates(eventId: $id) { seatId status version } }', { id },
    ({ seatUpdates: c }) => {
      if (seats.apply(c.seatId, c.status, c.version)) onChange(c);
    });
  const load = async () => {
    const { seatMap } = await gql('query($id: UUID!) { seatMap(eventId: $id) { seats version } }', { id });
    if (seatMap) seats.load(seatMap.seats, seatMap.version);
    onLoad();
  };
  const stopReconnect = onReconnect(() => load().catch(() => {}));
  const stop = () => {
    stopChanges();
    stopReconnect();
  };
  await whenConnected();
  try {
    await load();
  } catch (e) {
    stop();
    throw e;
  }
  return stop;
}

export class SeatMap extends SeatStatus {
  /**
   * `event`: { sections: [{ name, priceTier, priceCents, rows: [{ label, seats, firstSeatId }] }],
   * priceTiers: [{ name, priceCents }], currency, seatCount }.
   */
  constructor(canvas, event, { width, onToggle, onFocus, money }) {
    super(event.seatCount);
    this.canvas = canvas;
    this.event = event;
    this.onToggle = onToggle ?? (() => {});
    this.onFocus = onFocus ?? (() => {});
    this.money = money ?? ((c) => (c / 100).toFixed(2));
    this.mine = new Set();
    this.selected = new Set();
    this.focused = null;
    this.tierColour = tierColours(event.priceTiers);
    this.zoom = 1;
    this.width = width;
    this.layout(width);
    canvas.addEventListener('click', (e) => {
      const seat = this.seatAt(e.offsetX, e.offsetY);
      if (seat !== null) {
        this.focus(seat);
        this.onToggle(seat);
      }
    });
    canvas.addEventListener('keydown', (e) => this.key(e));
    canvas.addEventListener('focus', () => this.focus(this.focused ?? this.firstAvailable()));
  }

  /** Seat positions: rows centred under the widest one, sections one under the other. */
  layout(width) {
    const rows = [];
    let widest = 1;
    for (const s of this.event.sections) for (const r of s.rows) widest = Math.max(widest, r.seats);
    const fit = Math.max(3, Math.min(22, Math.floor((width - LABEL - 8) / widest)));
    const cell = Math.max(3, Math.min(48, Math.round(fit * this.zoom)));
    this.cell = cell;
    this.labels = cell >= 9;
    let y = 4;
    this.titles = [];
    for (const s of this.event.sections) {
      this.titles.push({ text: `${s.name} · ${s.priceTier} · ${this.money(s.priceCents)}`, y });
      y += TITLE;
      for (const r of s.rows) {
        const x = LABEL + Math.floor(((widest - r.seats) * cell) / 2);
        rows.push({ section: s, label: r.label, seats: r.seats, first: r.firstSeatId, x, y });
        y += cell;
      }
      y += 8;
    }
    this.rows = rows;
    this.cssWidth = LABEL + widest * cell + 8;
    this.cssHeight = y;
    // A crisp map on dense screens, within what a canvas can hold.
    const dpr = Math.min(window.devicePixelRatio || 1, Math.sqrt(16e6 / (this.cssWidth * this.cssHeight)));
    this.canvas.width = Math.max(1, Math.floor(this.cssWidth * Math.max(dpr, 0.25)));
    this.canvas.height = Math.max(1, Math.floor(this.cssHeight * Math.max(dpr, 0.25)));
    this.canvas.style.width = `${this.cssWidth}px`;
    this.canvas.style.height = `${this.cssHeight}px`;
    this.ctx = this.canvas.getContext('2d', { alpha: false });
    this.ctx.setTransform(this.canvas.width / this.cssWidth, 0, 0, this.canvas.height / this.cssHeight, 0, 0);
  }

  rowOf(seat) {
    let lo = 0;
    let hi = this.rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.rows[mid].first <= seat) lo = mid;
      else hi = mid - 1;
    }
    return this.rows[lo];
  }

  /** The whole map, redrawn. */
  load(seats, version) {
    super.load(seats, version);
    this.drawAll();
  }

  /** One change, its seat repainted. */
  apply(seat, status, version) {
    if (!super.apply(seat, status, version)) return false;
    this.drawSeat(seat);
    return true;
  }

  colour(seat, row) {
    if (this.selected.has(seat)) return COLOURS.selected;
    if (this.mine.has(seat)) return COLOURS.mine;
    const s = this.status[seat];
    if (s === 72) return COLOURS.held;
    if (s === 66) return COLOURS.booked;
    return this.tierColour.get(row.section.priceTier) ?? TIER_COLOURS[0];
  }

  drawAll() {
    const { ctx } = this;
    ctx.fillStyle = COLOURS.background;
    ctx.fillRect(0, 0, this.cssWidth, this.cssHeight);
    ctx.fillStyle = '#374151';
    ctx.font = '13px system-ui, sans-serif';
    ctx.textBaseline = 'middle';
    for (const t of this.titles) ctx.fillText(t.text, 4, t.y + TITLE / 2);
    ctx.font = `${Math.min(11, this.cell - 2)}px system-ui, sans-serif`;
    for (const row of this.rows) {
      if (this.labels) {
        ctx.fillStyle = '#6b7280';
        ctx.fillText(row.label, 4, row.y + this.cell / 2);
      }
      for (let i = 0; i < row.seats; i++) this.paint(row.first + i, row, false);
    }
  }

  drawSeat(seat) {
    this.paint(seat, this.rowOf(seat), true);
  }

  paint(seat, row, clear) {
    const { ctx, cell } = this;
    const x = row.x + (seat - row.first) * cell;
    const gap = cell >= 8 ? 2 : cell >= 5 ? 1 : 0;
    if (clear) {
      ctx.fillStyle = COLOURS.background;
      ctx.fillRect(x, row.y, cell, cell);
    }
    ctx.fillStyle = this.colour(seat, row);
    ctx.fillRect(x + gap / 2, row.y + gap / 2, cell - gap, cell - gap);
    if (seat === this.focused) {
      // Inside the cell, so repainting the cell alone removes it.
      const w = Math.max(1, Math.min(2, cell / 6));
      ctx.strokeStyle = COLOURS.focus;
      ctx.lineWidth = w;
      ctx.strokeRect(x + w / 2, row.y + w / 2, cell - w, cell - w);
    }
  }

  /** The seat under a point of the canvas (CSS pixels), or null. */
  seatAt(x, y) {
    const { rows, cell } = this;
    let lo = 0;
    let hi = rows.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (rows[mid].y <= y) lo = mid;
      else hi = mid - 1;
    }
    const row = rows[lo];
    if (!row || y < row.y || y >= row.y + cell || x < row.x) return null;
    const i = Math.floor((x - row.x) / cell);
    return i < row.seats ? row.first + i : null;
  }

  /** Where a seat is drawn (CSS pixels of the canvas), for scrolling it into view and for tests. */
  seatCentre(seat) {
    const row = this.rowOf(seat);
    return { x: row.x + (seat - row.first) * this.cell + this.cell / 2, y: row.y + this.cell / 2 };
  }

  /** "Row F, seat 12, 45.00, available" (with the section when there are several). */
  label(seat) {
    const row = this.rowOf(seat);
    const where = this.event.sections.length > 1 ? `${row.section.name}, row ${row.label}` : `Row ${row.label}`;
    let state = STATUS_WORDS[this.statusOf(seat)];
    if (this.mine.has(seat)) state = 'held by you';
    if (this.selected.has(seat)) state = 'selected';
    return `${where}, seat ${seat - row.first + 1}, ${this.money(row.section.priceCents)}, ${state}`;
  }

  seatInfo(seat) {
    const row = this.rowOf(seat);
    return { section: row.section.name, row: row.label, seat: seat - row.first + 1, priceCents: row.section.priceCents };
  }

  focus(seat) {
    if (seat === null || seat === undefined) return;
    const before = this.focused;
    this.focused = seat;
    if (before !== null && before !== seat) this.drawSeat(before);
    this.drawSeat(seat);
    this.onFocus(seat, this.label(seat));
  }

  key(e) {
    if (this.focused === null) return;
    const row = this.rowOf(this.focused);
    const index = this.focused - row.first;
    const at = this.rows.indexOf(row);
    let next = null;
    if (e.key === 'ArrowRight' && index + 1 < row.seats) next = this.focused + 1;
    else if (e.key === 'ArrowLeft' && index > 0) next = this.focused - 1;
    else if (e.key === 'Home') next = row.first;
    else if (e.key === 'End') next = row.first + row.seats - 1;
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      const other = this.rows[at + (e.key === 'ArrowDown' ? 1 : -1)];
      if (other) {
        // The seat drawn nearest above or below.
        const x = row.x + index * this.cell;
        next = other.first + Math.max(0, Math.min(other.seats - 1, Math.round((x - other.x) / this.cell)));
      }
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      this.onToggle(this.focused);
      this.onFocus(this.focused, this.label(this.focused));
      return;
    } else return;
    e.preventDefault();
    if (next !== null) this.focus(next);
  }

  /** Zooms by `factor` (1 = the size that fits the width), up to 48-pixel seats; redraws. */
  setZoom(factor) {
    this.zoom = Math.max(1, Math.min(16, factor));
    this.layout(this.width);
    this.drawAll();
    return this.cell;
  }

  /** Repaints the seats whose look depends on `mine` and `selected` after they changed. */
  repaint(seats) {
    for (const s of seats) this.drawSeat(s);
  }
}
