// The Bulwark console. Plain JavaScript, no build step, no dependencies: it talks to
// /admin/api/* with the session token in a header, and writes everything it shows with
// textContent (never as HTML), so channel names, user ids and payloads cannot inject markup.
const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem('bulwark-admin-token') || '';
let timer;
const samples = { connections: [], deliveries: [], lag: [] };
let lastDeliveries;

function status(text, error = false) {
  const el = $('status');
  el.textContent = text;
  el.className = error ? 'error' : '';
}

async function post(path, body = {}) {
  const res = await fetch(`/admin/api/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (res.status === 401 && path !== 'login') {
    logout('Session expired: log in again.');
    throw new Error('session expired');
  }
  if (!res.ok) throw new Error(json.error || `HTTP ${res.status}`);
  return json;
}

/** api runs a server API method; resolves with its result, rejects with its error message. */
async function api(method, params = {}) {
  const out = await post('call', { method, params });
  if (out.error) throw new Error(`${out.error.code}: ${out.error.message}`);
  return out.result;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function fill(list, items) {
  list.replaceChildren(...items);
}

function showApp(on) {
  $('login-view').hidden = on;
  $('app').hidden = !on;
  $('logout').hidden = !on;
}

function logout(message) {
  token = '';
  sessionStorage.removeItem('bulwark-admin-token');
  clearInterval(timer);
  showApp(false);
  if (message) status(message, true);
}

$('login-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('login-error').textContent = '';
  try {
    const out = await post('login', { password: $('password').value });
    token = out.token;
    sessionStorage.setItem('bulwark-admin-token', token);
    $('password').value = '';
    start();
  } catch (err) {
    $('login-error').textContent = err.message;
  }
});
$('logout').addEventListener('click', () => logout('Logged out.'));

for (const button of document.querySelectorAll('nav button')) {
  button.addEventListener('click', () => showPage(button.dataset.page));
}

function showPage(name) {
  for (const page of document.querySelectorAll('.page')) page.hidden = page.id !== `page-${name}`;
  for (const b of document.querySelectorAll('nav button')) {
    if (b.dataset.page === name) b.setAttribute('aria-current', 'page');
    else b.removeAttribute('aria-current');
  }
  if (name === 'controls') refreshSwitches().catch((err) => status(err.message, true));
}

function start() {
  showApp(true);
  status('Connected.');
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 1000);
}

const sum = (values) => (values || []).reduce((a, v) => a + v.value, 0);

async function refresh() {
  let ov;
  try {
    ov = await post('overview');
  } catch (err) {
    status(`Overview failed: ${err.message}`, true);
    return;
  }
  const m = ov.metrics;
  const deliveries = sum(m.deliveries);
  const rate =
    lastDeliveries === undefined
      ? 0
      : Math.max(0, deliveries - lastDeliveries.value) / ((ov.time - lastDeliveries.time) / 1000);
  lastDeliveries = { value: deliveries, time: ov.time };
  const lagMs = ov.loopLagP99 * 1000;
  const shedding = (m.shedding || []).filter((v) => v.value === 1).map((v) => v.labels.level);
  $('ov-connections').textContent = sum(m.connections);
  $('ov-subscriptions').textContent = sum(m.subscriptions);
  $('ov-deliveries').textContent = Math.round(rate);
  $('ov-lag').textContent = `${lagMs.toFixed(1)} ms`;
  $('ov-shedding').textContent = shedding.length ? shedding.join(', ') : 'off';
  $('ov-engine').textContent = `${ov.engine} ${sum(m.engineUp) > 0 ? 'up' : 'DOWN'}${ov.draining ? ' · draining' : ''}`;
  push('connections', sum(m.connections));
  push('deliveries', rate);
  push('lag', lagMs);
  draw('chart-connections', samples.connections);
  draw('chart-deliveries', samples.deliveries);
  draw('chart-lag', samples.lag);
  fill(
    $('nodes').tBodies[0],
    ov.nodes.map((n) => {
      const tr = el('tr');
      for (const v of [n.name, n.num_clients, n.num_users, n.num_channels, n.num_subs, `${n.uptime} s`])
        tr.append(el('td', v));
      return tr;
    }),
  );
  fill(
    $('rejections'),
    (m.rejections || []).map((v) => el('li', `${v.labels.reason}: ${v.value}`)),
  );
  const breakers = new Map((m.breakerOpen || []).map((v) => [v.labels.target, v.value]));
  const cache = (m.rpcCache || []).filter((v) => v.labels.stat === 'hits' || v.labels.stat === 'misses');
  fill($('targets'), [
    ...[...breakers].map(([target, open]) =>
      el('li', `${target}: breaker ${open ? 'OPEN' : 'closed'}`, open ? 'error' : ''),
    ),
    ...cache.map((v) => el('li', `rpc cache ${v.labels.method} ${v.labels.stat}: ${v.value}`)),
  ]);
}

function push(name, value) {
  const s = samples[name];
  s.push(value);
  if (s.length > 120) s.shift();
}

/** draw plots the samples so far (up to two minutes) as a line over a baseline, scaled to the largest. */
function draw(id, values) {
  const canvas = $(id);
  const g = canvas.getContext('2d');
  const w = canvas.width;
  const h = canvas.height;
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...values);
  const top = 22;
  const bottom = h - 6;
  g.strokeStyle = '#c9ced6';
  g.lineWidth = 1;
  g.beginPath();
  g.moveTo(0, bottom);
  g.lineTo(w, bottom);
  g.stroke();
  const span = Math.max(values.length - 1, 1);
  g.strokeStyle = '#1b6ac9';
  g.lineWidth = 2;
  g.beginPath();
  values.forEach((v, i) => {
    const x = 2 + (i / span) * (w - 4);
    const y = bottom - (v / max) * (bottom - top);
    if (i === 0) g.moveTo(x, y);
    else g.lineTo(x, y);
  });
  g.stroke();
  g.fillStyle = '#333';
  g.font = '13px system-ui, sans-serif';
  const last = values.length ? values[values.length - 1] : 0;
  g.fillText(`now ${Math.round(last * 10) / 10} · max ${Math.round(max * 10) / 10} · last ${values.length} s`, 6, 15);
}

// ---- channels
let channel = '';
$('channels-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const out = await api('channels', { pattern: $('channel-pattern').value });
    const rows = Object.entries(out.channels).map(([name, info]) => {
      const tr = el('tr');
      const open = el('button', 'Open');
      open.type = 'button';
      open.addEventListener('click', () => openChannel(name));
      const td = el('td');
      td.append(open);
      tr.append(el('td', name), el('td', info.num_clients), td);
      return tr;
    });
    fill($('channels').tBodies[0], rows);
    status(`${rows.length} channels.`);
  } catch (err) {
    status(err.message, true);
  }
});

async function openChannel(name) {
  channel = name;
  $('channel-detail').hidden = false;
  $('channel-name').textContent = name;
  await loadChannel();
}

async function loadChannel() {
  try {
    const h = await api('history', { channel, limit: 20, reverse: true });
    fill(
      $('history'),
      h.publications.map((p) => el('li', `#${p.offset ?? '-'} ${JSON.stringify(p.data)}`)),
    );
  } catch (err) {
    fill($('history'), [el('li', err.message, 'error')]);
  }
  try {
    const p = await api('presence', { channel });
    fill(
      $('presence'),
      Object.values(p.presence).map((c) => el('li', `${c.user || '(anonymous)'} · ${c.client}`)),
    );
  } catch (err) {
    fill($('presence'), [el('li', err.message, 'hint')]);
  }
}

$('publish-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  let data;
  try {
    data = JSON.parse($('publish-data').value);
  } catch {
    status('The data is not valid JSON.', true);
    return;
  }
  try {
    await api('publish', { channel, data });
    status(`Published to ${channel}.`);
    await loadChannel();
  } catch (err) {
    status(`Publish failed: ${err.message}`, true);
  }
});

// ---- player
let player = '';
$('player-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  player = $('player-user').value.trim();
  try {
    const out = await post('user', { user: player });
    fill(
      $('player-connections'),
      out.connections.length
        ? out.connections.map((c) =>
            el('li', `${c.client} · ${c.transport} · ${c.address} · ${c.channels.join(', ') || 'no channels'}`),
          )
        : [el('li', 'No connection on this node.', 'hint')],
    );
  } catch (err) {
    status(err.message, true);
  }
});
$('player-disconnect').addEventListener('click', async () => {
  if (!player || !confirm(`Disconnect every connection of ${player}?`)) return;
  try {
    await api('disconnect', { user: player });
    status(`Disconnected ${player}.`);
  } catch (err) {
    status(err.message, true);
  }
});
$('send-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await api('send', { user: player, data: JSON.parse($('send-data').value) });
    status(`Sent to ${player}.`);
  } catch (err) {
    status(err.message, true);
  }
});

// ---- controls
async function refreshSwitches() {
  const out = await api('kill_switch_list');
  fill(
    $('switches'),
    out.switches.length
      ? out.switches.map((s) => {
          const li = el('li', `${s.kind} ${s.target}: ${s.reason} `, 'switch');
          const on = el('button', 'Switch on again');
          on.type = 'button';
          on.addEventListener('click', async () => {
            try {
              await api('kill_switch_remove', { kind: s.kind, target: s.target });
              status(`${s.kind} ${s.target} is on again.`);
              await refreshSwitches();
            } catch (err) {
              status(err.message, true);
            }
          });
          li.append(on);
          return li;
        })
      : [el('li', 'No kill switch is set.', 'hint')],
  );
}

$('switch-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await api('kill_switch_set', {
      kind: $('switch-kind').value,
      target: $('switch-target').value,
      reason: $('switch-reason').value,
    });
    status(`${$('switch-kind').value} ${$('switch-target').value} switched off.`);
    await refreshSwitches();
  } catch (err) {
    status(err.message, true);
  }
});

$('drain-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!confirm('Drain this node? It refuses new connections and disconnects its clients.')) return;
  try {
    const out = await api('drain', { window_ms: Number($('drain-window').value) });
    status(`Draining: ${out.clients} clients over ${out.window_ms} ms.`);
  } catch (err) {
    status(err.message, true);
  }
});

if (token) start();
