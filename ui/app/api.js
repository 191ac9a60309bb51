// Talking to SeatGrid from the pages: GraphQL over HTTP, subscriptions over graphql-transport-ws
// (the vendored graphql-ws client), the signed-in session's token, and every error code in plain
// words. Nothing here knows about the DOM.

const TOKEN_KEY = 'seatgrid.token';

function decodeClaims(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part));
  } catch {
    return null;
  }
}

/** The signed-in caller: a bearer token kept in this browser's storage. */
export const session = {
  get token() {
    const token = localStorage.getItem(TOKEN_KEY);
    const claims = token && decodeClaims(token);
    if (!claims || (claims.exp && claims.exp * 1000 < Date.now())) return null;
    return token;
  },
  get claims() {
    const token = this.token;
    return token ? decodeClaims(token) : null;
  },
  signIn(token) {
    localStorage.setItem(TOKEN_KEY, token);
    resetSubscriptions();
  },
  signOut() {
    localStorage.removeItem(TOKEN_KEY);
    resetSubscriptions();
  },
};

/** An answer that was not a success: `code` is the API's error code. */
export class ApiError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    this.code = code;
    this.extra = extra;
  }
}

async function answer(res) {
  const body = await res.json().catch(() => null);
  if (res.status === 429 || body?.code === 'rate_limited') {
    throw new ApiError('rate_limited', body?.detail ?? 'rate limited', {
      retryAfter: Number(res.headers.get('retry-after')) || 1,
    });
  }
  return body;
}

/** Runs a GraphQL operation; its first error is thrown as an ApiError. */
export async function gql(query, variables = {}) {
  const headers = { 'content-type': 'application/json' };
  const token = session.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError('offline', 'the server could not be reached');
  }
  const body = await answer(res);
  if (!body) throw new ApiError(`http_${res.status}`, res.statusText);
  if (body.errors?.length) {
    const e = body.errors[0];
    throw new ApiError(e.extensions?.code ?? 'error', e.message, e.extensions ?? {});
  }
  return body.data;
}

/** A JSON REST call (problem+json errors thrown as ApiError). */
export async function rest(method, path, payload) {
  const headers = { 'content-type': 'application/json' };
  const token = session.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload && JSON.stringify(payload) });
  } catch {
    throw new ApiError('offline', 'the server could not be reached');
  }
  const body = await answer(res);
  if (!res.ok) throw new ApiError(body?.code ?? `http_${res.status}`, body?.detail ?? res.statusText, body ?? {});
  return body;
}

let client = null;
let connected = false;
const reconnectListeners = new Set();
const connectWaiters = [];

function resetSubscriptions() {
  if (client) client.dispose();
  client = null;
  connected = false;
}

function wsClient() {
  if (client) return client;
  let connectedBefore = false;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql/ws`;
  client = globalThis.graphqlWs.createClient({
    url,
    connectionParams: () => (session.token ? { token: session.token } : {}),
    lazy: true,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    on: {
      connected: () => {
        connected = true;
        connectWaiters.splice(0).forEach((f) => f());
        if (connectedBefore) reconnectListeners.forEach((f) => f());
        connectedBefore = true;
      },
      closed: () => {
        connected = false;
      },
    },
  });
  return client;
}

/**
 * Subscribes; `onData` gets each result's data, `onError` an ApiError. Returns the unsubscribe
 * function.
 */
export function subscribe(query, variables, onData, onError = () => {}) {
  return wsClient().subscribe(
    { query, variables },
    {
      next: (r) => (r.errors?.length
        ? onError(new ApiError(r.errors[0].extensions?.code ?? 'error', r.errors[0].message))
        : onData(r.data)),
      error: (e) => onError(new ApiError('subscription', String(e?.reason ?? e?.message ?? e))),
      complete: () => {},
    },
  );
}

/**
 * Resolves once the subscription connection is up (after `subscribe`, which opens it), or after
 * `ms` if it does not come up: the caller then reads state it must not miss changes to.
 */
export function whenConnected(ms = 3000) {
  if (connected) return Promise.resolve();
  return new Promise((resolve) => {
    connectWaiters.push(resolve);
    setTimeout(resolve, ms);
  });
}

/** Called after the subscription connection came back (updates may have been missed). */
export function onReconnect(f) {
  reconnectListeners.add(f);
  return () => reconnectListeners.delete(f);
}

const WORDS = {
  seats_unavailable: 'Someone else just took one of those seats. Pick other seats.',
  not_enough_seats: 'There are not that many seats left together. Try fewer seats, or not together.',
  sold_out: 'Sold out: every seat is held or booked. Seats come back when holds expire.',
  customer_limit_exceeded: 'You have reached the most seats one person may have for this event.',
  too_many_seats: 'That is more seats than one hold may take.',
  no_seats: 'Pick at least one seat first.',
  duplicate_seats: 'The same seat was picked twice.',
  unknown_seats: 'Some of those seats do not exist at this event.',
  invalid_seat: 'Some of those seats do not exist at this event.',
  event_not_found: 'This event does not exist (any more).',
  hold_not_found: 'That hold does not exist.',
  hold_expired: 'The hold expired: its seats went back on sale.',
  hold_released: 'The hold was released: its seats went back on sale.',
  hold_booked: 'Those seats are already booked for you.',
  hold_failed: 'That hold did not go through.',
  not_hold_owner: 'That hold belongs to someone else.',
  order_not_found: 'That order does not exist.',
  order_not_cancellable: 'That order can no longer be cancelled.',
  unauthenticated: 'Please sign in first.',
  forbidden: 'Your account may not do that.',
  rate_limited: 'Too many requests right now. Wait a moment and try again.',
  contention: 'Many people are buying right now. Try again in a moment.',
  busy: 'Many people are buying right now. Try again in a moment.',
  store_unavailable: 'SeatGrid is briefly unavailable. Try again in a moment.',
  read_unavailable: 'SeatGrid is briefly unavailable. Try again in a moment.',
  offline: 'The server could not be reached. Check your connection.',
  analytics_unavailable: 'the analytics store (ClickHouse) is off or unreachable on this server.',
  invalid_request: 'That request was not accepted',
};

/** An error in words a buyer understands. */
export function plainWords(error) {
  if (!(error instanceof ApiError)) return `Something went wrong: ${error?.message ?? error}`;
  const words = WORDS[error.code];
  if (error.code === 'invalid_request') return `${words}: ${error.message}`;
  return words ?? `Something went wrong (${error.code}): ${error.message}`;
}

/** A fresh idempotency key (also on plain-HTTP hosts, where `crypto.randomUUID` is missing). */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, '0')).join('');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** Money in the event's currency. */
export function money(cents, currency) {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}
