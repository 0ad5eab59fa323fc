// The REST client of the console: every call goes to /openidm with the signed-in token in the
// Authorization header (never in a URL). The token lives in sessionStorage: this tab only.

const KEY = 'idsync.console.session';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

let onUnauthorized = () => {};

/** Called when the server answers 401 to a signed-in call (session expired or revoked). */
export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

export const session = {
  load() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || 'null');
    } catch {
      return null;
    }
  },
  save(s) {
    sessionStorage.setItem(KEY, JSON.stringify(s));
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
  get token() {
    return this.load()?.token ?? null;
  },
  /** Whether the signed-in principal may change things (admin role). */
  get canWrite() {
    return (this.load()?.roles ?? []).includes('admin');
  },
};

/** Builds `/openidm/<path>?<query>`; `query` values that are undefined or null are left out. */
export function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return '/openidm/' + path + (s ? '?' + s : '');
}

async function send(method, path, { query, body, token, headers } = {}) {
  const h = { Accept: 'application/json', ...headers };
  const t = token ?? session.token;
  if (t) h.Authorization = 'Bearer ' + t;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const resp = await fetch(url(path, query), {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const message = json?.message || text || resp.statusText || `HTTP ${resp.status}`;
    if (resp.status === 401 && token === undefined && session.token) onUnauthorized(message);
    throw new ApiError(resp.status, message, json);
  }
  return json;
}

export const api = {
  get: (path, query) => send('GET', path, { query }),
  post: (path, query, body) => send('POST', path, { query, body }),
  put: (path, body, headers) => send('PUT', path, { body, headers }),
  del: (path, query) => send('DELETE', path, { query }),
  send,
};

/** A CREST query: `{result, totalPagedResults, ...}`. */
export function query(path, filter, opts = {}) {
  return api.get(path, { _queryFilter: filter || 'true', ...opts });
}

/** How many entries match `filter` (the exact total of a one-entry page). */
export async function count(path, filter) {
  const r = await query(path, filter, { _pageSize: 1, _totalPagedResultsPolicy: 'EXACT', _fields: '_id' });
  return r.totalPagedResults;
}

/** A CREST filter string literal. */
export function lit(v) {
  return '"' + String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

/** Signs in with a user name and password (one argon2 check) and keeps the session token. */
export async function loginWithPassword(username, password) {
  const r = await send('POST', 'authentication', {
    query: { _action: 'login' },
    body: { username, password },
    token: '',
  });
  session.save({ token: r.token, name: r.authenticationId, roles: r.roles, kind: 'session' });
  return r;
}

/** Signs in with a bearer token: asks the server who it is. */
export async function loginWithToken(token) {
  const r = await send('GET', 'info/login', { token });
  session.save({ token, name: r.authenticationId, roles: r.authorization?.roles ?? [], kind: 'token' });
  return r;
}

export async function logout() {
  const s = session.load();
  session.clear();
  if (s?.kind === 'session') {
    try {
      await send('POST', 'authentication', { query: { _action: 'logout' }, token: s.token });
    } catch {
      // Already expired: nothing to forget.
    }
  }
}
