// The pages' entry: routes by path (the server answers every page path with this app), the
// signed-in state in the header, and the development sign-in.

import { session, rest, plainWords } from './api.js';
import { h, show, navigate } from './dom.js';
import { eventList, eventPage, ticketsPage } from './buyer.js';
import { organizerPage, dashboardPage } from './organizer.js';

let current = new AbortController();

function header() {
  const who = document.getElementById('who');
  const claims = session.claims;
  who.replaceChildren(claims
    ? h('span', {}, `${claims.sub} (${claims.role ?? 'buyer'}) `,
      h('button', { class: 'link', onclick: () => { session.signOut(); navigate('/'); } }, 'Sign out'))
    : h('a', { href: `/login?next=${encodeURIComponent(location.pathname)}` }, 'Sign in'));
}

async function loginPage() {
  const next = new URLSearchParams(location.search).get('next') || '/';
  const name = h('input', { id: 'login-name', required: true, maxlength: '64', pattern: '[A-Za-z0-9._@-]+', autocomplete: 'username' });
  const role = h('select', { id: 'login-role' }, h('option', { value: 'buyer' }, 'Buyer'), h('option', { value: 'organizer' }, 'Organizer'));
  const error = h('p', { class: 'error', role: 'alert' });
  const form = h('form', {
    class: 'login',
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const { token } = await rest('POST', '/api/dev/token', { name: name.value, role: role.value });
        session.signIn(token);
        navigate(next);
      } catch (err) {
        error.textContent = err.code === 'dev_login_off'
          ? 'Development sign-in is off on this server: sign in with your identity provider and paste its token below.'
          : plainWords(err);
      }
    },
  }, h('label', {}, 'Name ', name), h('label', {}, 'As ', role), h('button', { id: 'login-submit' }, 'Sign in'));
  const pasted = h('textarea', { id: 'login-token', rows: '3', 'aria-label': 'Access token' });
  const paste = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      session.signIn(pasted.value.trim());
      if (!session.token) error.textContent = 'That is not a valid, unexpired token.';
      else navigate(next);
    },
  }, h('p', {}, 'Or paste an access token from your identity provider:'), pasted, h('button', {}, 'Use this token'));
  show(h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Development sign-in: any name, no password. It works only where the server was started with SEATGRID_DEV_LOGIN=on (scripts/up does).'),
    form, error, paste);
}

async function route() {
  current.abort();
  current = new AbortController();
  header();
  const path = location.pathname;
  const event = path.match(/^\/events\/([0-9a-f-]{36})$/i);
  const dashboard = path.match(/^\/organizer\/events\/([0-9a-f-]{36})$/i);
  try {
    if (path === '/') await eventList();
    else if (event) await eventPage(event[1], { signal: current.signal });
    else if (path === '/tickets') await ticketsPage();
    else if (path === '/login') await loginPage();
    else if (path === '/organizer') await organizerPage({ signal: current.signal });
    else if (dashboard) await dashboardPage(dashboard[1], { signal: current.signal });
    else show(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '/' }, 'See all events')));
    // When the page was ready, from the navigation's start (read by scripts/bench-pages).
    window.seatgridPage = { path, readyAt: performance.now() };
  } catch (e) {
    show(h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, plainWords(e)));
  }
  document.getElementById('main').focus({ preventScroll: true });
}

// Links inside the app change the page without reloading it.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.target || a.origin !== location.origin || e.ctrlKey || e.metaKey || e.shiftKey) return;
  if (a.pathname.startsWith('/api') || a.pathname.startsWith('/graphql')) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
});
window.addEventListener('popstate', route);
route();
