// The console's shell: sign-in, navigation between pages (the URL hash), live refresh.
// Each page module exports `mount(root, route)`, which draws the page and may return
// `{refresh, every}`: the shell calls `refresh()` every `every` ms while the page is shown
// and the tab is visible, one call at a time.

import { session, loginWithPassword, loginWithToken, logout, setUnauthorizedHandler } from './api.js';
import { showError } from './ui.js';
import * as dashboard from './pages/dashboard.js';
import * as mappings from './pages/mappings.js';
import * as runs from './pages/runs.js';
import * as run from './pages/run.js';
import * as queue from './pages/queue.js';
import * as schedules from './pages/schedules.js';
import * as objects from './pages/objects.js';
import * as config from './pages/config.js';

// Errors a page did not handle are shown, and kept for the browser tests.
window.__consoleErrors = [];
window.addEventListener('error', (e) => window.__consoleErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => {
  window.__consoleErrors.push(String(e.reason?.message ?? e.reason));
  showError(e.reason);
});

const $ = (id) => document.getElementById(id);

function route() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, q] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(q ?? ''), raw };
}

function pageFor(r) {
  const [first, ...rest] = r.parts;
  switch (first) {
    case undefined: return ['dashboard', dashboard];
    case 'mappings': return ['mappings', mappings];
    case 'runs': return rest.length ? ['runs', run] : ['runs', runs];
    case 'queue': return ['queue', queue];
    case 'schedules': return ['schedules', schedules];
    case 'objects': case 'object': return ['objects', objects];
    case 'config': return ['config', config];
    default: return ['dashboard', dashboard];
  }
}

let generation = 0;
let timer = null;

async function show() {
  const gen = ++generation;
  clearTimeout(timer);
  const r = route();
  const [name, mod] = pageFor(r);
  for (const a of document.querySelectorAll('nav.side a')) {
    a.classList.toggle('active', a.dataset.page === name);
  }
  const root = $('page');
  root.replaceChildren();
  $('banner').hidden = true;
  root.dataset.page = name;
  let handle;
  try {
    handle = await mod.mount(root, r);
  } catch (err) {
    if (gen === generation) showError(err);
    return;
  }
  if (!handle?.refresh) return;
  const tick = async () => {
    if (gen !== generation) return;
    if (!document.hidden) {
      try {
        await handle.refresh();
      } catch (err) {
        if (gen === generation && err?.status !== 401) showError(err);
      }
    }
    if (gen === generation) timer = setTimeout(tick, typeof handle.every === 'function' ? handle.every() : handle.every ?? 2000);
  };
  timer = setTimeout(tick, typeof handle.every === 'function' ? handle.every() : handle.every ?? 2000);
}

function showApp() {
  const s = session.load();
  $('signin').hidden = true;
  $('app').hidden = false;
  $('who-name').textContent = s.name ?? '';
  $('who-role').textContent = (s.roles ?? []).join(', ') + (session.canWrite ? '' : ' · read-only');
  document.body.classList.toggle('readonly', !session.canWrite);
  show();
}

function showSignin(message) {
  generation++;
  clearTimeout(timer);
  $('app').hidden = true;
  $('signin').hidden = false;
  const err = $('signin-error');
  err.hidden = !message;
  err.textContent = message ?? '';
  ($('signin-username').closest('[hidden]') ? $('signin-token') : $('signin-username')).focus();
}

let mode = 'password';

function setMode(m) {
  mode = m;
  for (const t of document.querySelectorAll('.signin .tab')) t.classList.toggle('active', t.dataset.mode === m);
  document.querySelector('.mode-password').hidden = m !== 'password';
  document.querySelector('.mode-token').hidden = m !== 'token';
}

async function signIn(e) {
  e.preventDefault();
  const btn = $('signin-submit');
  btn.disabled = true;
  try {
    if (mode === 'password') {
      await loginWithPassword($('signin-username').value, $('signin-password').value);
      $('signin-password').value = '';
    } else {
      await loginWithToken($('signin-token').value.trim());
      $('signin-token').value = '';
    }
    showApp();
  } catch (err) {
    const msg = err?.status === 401 ? 'Sign-in refused: ' + err.message : (err?.message ?? String(err));
    showSignin(msg);
  } finally {
    btn.disabled = false;
  }
}

function start() {
  for (const t of document.querySelectorAll('.signin .tab')) t.addEventListener('click', () => setMode(t.dataset.mode));
  $('signin-form').addEventListener('submit', signIn);
  $('signout').addEventListener('click', async () => {
    await logout();
    showSignin();
  });
  setUnauthorizedHandler((message) => {
    session.clear();
    showSignin('Signed out: ' + message);
  });
  window.addEventListener('hashchange', () => {
    if (session.token) show();
  });
  if (session.token) showApp();
  else showSignin();
}

start();
