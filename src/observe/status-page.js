// fedgate's status page: plain DOM, no build step. Polls /debug/* about once a
// second (at once when the event stream says something changed), and keeps the
// event list from the live stream. Every piece of data goes in as text or as an
// attribute value, never as markup.

const POLL_MS = 1000;
const FETCH_TIMEOUT_MS = 5000;
const MAX_EVENTS = 200;
const STATES = ['ready', 'not-ready', 'terminating', 'ejected', 'check-failing'];
const STATE_LABELS = {
  ready: 'ready',
  'not-ready': 'not ready',
  terminating: 'terminating',
  ejected: 'ejected',
  'check-failing': 'failing check',
};
const KINDS = ['failover', 'ejection', 'return', 'cluster', 'action', 'reload'];

const $ = (id) => document.getElementById(id);

/** An element with attributes and children; strings become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const pct = (x) => `${Math.round(x * 1000) / 10} %`;
const place = (l) =>
  l && (l.region || l.zone) ? [l.region, l.zone, l.subzone].filter(Boolean).join('/') : 'anywhere';

async function getJson(path, { allow404 = false } = {}) {
  const res = await fetch(path, {
    headers: { Accept: 'application/json' },
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (allow404 && res.status === 404) return null;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error ?? `${path}: HTTP ${res.status}`);
  return body;
}

// ---- state -------------------------------------------------------------------------

const state = {
  /** undefined: not asked yet; false: no demo controls here. */
  demo: undefined,
  pendingAction: false,
  rendered: {},
  events: new Map(),
  kinds: new Set(KINDS),
};

/** Replaces a section's content only when its data changed (keeps focus and clicks stable). */
function renderIfChanged(name, data, render) {
  const key = JSON.stringify(data);
  if (state.rendered[name] === key) return;
  state.rendered[name] = key;
  render(data);
}

function showProblem(text) {
  const p = $('problem');
  p.hidden = !text;
  p.textContent = text ?? '';
}

function setLive(s, text) {
  const live = $('live');
  live.dataset.state = s;
  live.textContent = text;
}

// ---- Gateway API -----------------------------------------------------------------------

// Conditions where False is the healthy state (the spec's negative polarity).
const NEGATIVE_CONDITIONS = new Set(['Conflicted']);

/** A condition as a badge, green when healthy: its type (True), or type and status (and reason when not healthy); the message on hover. */
function conditionBadge(c) {
  const ok = (c.status === 'True') !== NEGATIVE_CONDITIONS.has(c.type);
  let text = c.type;
  if (c.status !== 'True')
    text = ok ? `${c.type}: ${c.status}` : `${c.type}: ${c.status} (${c.reason})`;
  return h(
    'span',
    {
      class: `badge cond ${ok ? 'cond-true' : 'cond-false'}`,
      title: `${c.type}: ${c.status} (${c.reason})${c.message ? `\n${c.message}` : ''}`,
      'data-condition': c.type,
      'data-status': c.status,
    },
    text,
  );
}

const conditions = (cs) => h('span', { class: 'conds' }, cs.map(conditionBadge));

function renderGateway(g) {
  const id = `${g.namespace}/${g.name}`;
  return h(
    'div',
    { class: 'gw', 'data-testid': `gateway-${id}` },
    h(
      'h3',
      {},
      `Gateway ${id} `,
      h('span', { class: 'muted' }, `in ${g.cluster}`),
      ' ',
      conditions(g.conditions),
    ),
    h(
      'table',
      { class: 'grid' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', {}, 'listener'), h('th', {}, 'routes'), h('th', {}, 'conditions')),
      ),
      h(
        'tbody',
        {},
        g.listeners.map((l) =>
          h(
            'tr',
            { 'data-testid': `listener-${l.name}` },
            h('th', { scope: 'row' }, l.name),
            h('td', { class: 'n' }, l.attachedRoutes),
            h('td', {}, conditions(l.conditions)),
          ),
        ),
      ),
    ),
  );
}

function backendText(b) {
  const name = b.service ? `${b.service}${b.port === null ? '' : `:${b.port}`}` : 'unusable';
  return h('div', { title: b.problem ?? '' }, `${name} · weight ${b.weight}`);
}

function renderRoute(r) {
  const id = `${r.namespace}/${r.name}`;
  return h(
    'div',
    { class: 'gw', 'data-testid': `route-${id}` },
    h('h3', {}, `${r.kind} ${id} `, h('span', { class: 'muted' }, `in ${r.cluster}`)),
    h(
      'ul',
      { class: 'parents' },
      r.parents.map((p) =>
        h(
          'li',
          { 'data-testid': `parent-${p.gateway}` },
          `on ${p.gateway}${p.sectionName ? ` (${p.sectionName})` : ''} `,
          conditions(p.conditions),
        ),
      ),
    ),
    r.rules.length === 0
      ? h('p', { class: 'hint' }, 'no rule in force')
      : h(
          'table',
          { class: 'grid' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['rule', 'matches', 'filters', 'backends', 'requests', 'share'].map((t) =>
                h('th', {}, t),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            r.rules.map((rule) =>
              h(
                'tr',
                { 'data-testid': `rule-${rule.index}` },
                h('th', { scope: 'row' }, rule.name ?? String(rule.index)),
                h(
                  'td',
                  {},
                  rule.matches.map((m) => h('div', {}, m)),
                ),
                h('td', {}, rule.filters.join(', ') || '–'),
                h('td', {}, rule.backends.length ? rule.backends.map(backendText) : '–'),
                h('td', { class: 'n', 'data-testid': 'requests' }, rule.requests),
                h(
                  'td',
                  { class: 'n', 'data-testid': 'share' },
                  rule.share === null ? '–' : pct(rule.share),
                ),
              ),
            ),
          ),
        ),
  );
}

function renderGatewayApi(data) {
  $('gateway-api').hidden = data.routes.length === 0;
  $('gateways').replaceChildren(...data.gateways.map(renderGateway));
  $('routes').replaceChildren(...data.routes.map(renderRoute));
}

// ---- clusters ------------------------------------------------------------------------

function sumEvents(watches) {
  if (!watches) return { events: '–', relists: '–', title: 'no watch counters' };
  let events = 0;
  let relists = 0;
  const lines = [];
  for (const [kind, w] of Object.entries(watches)) {
    const n = w.events.ADDED + w.events.MODIFIED + w.events.DELETED;
    events += n;
    relists += w.relists.expired + w.relists.error;
    lines.push(
      `${kind}: ${n} events (${w.events.BOOKMARK} bookmarks), relists ${w.relists.expired} expired / ${w.relists.error} after errors`,
    );
  }
  return { events, relists, title: lines.join('\n') };
}

function renderClusters(data) {
  $('federation').textContent = data.federation
    ? `· ${data.federation.name} (${data.federation.domain})`
    : '';
  $('self').textContent = `runs in ${place(data.self)}`;
  const rows = data.clusters.map((c) => {
    const w = sumEvents(c.watches);
    return h(
      'tr',
      { 'data-testid': `cluster-${c.name}`, 'data-state': c.state },
      h('th', { scope: 'row' }, c.name),
      h('td', {}, c.region ?? '–'),
      h('td', {}, h('span', { class: `badge ${c.state}` }, c.state)),
      h(
        'td',
        { title: c.lastSyncAt ?? 'never' },
        c.secondsSinceSync === null ? 'never' : `${c.secondsSinceSync} s ago`,
      ),
      h('td', {}, c.exportMode),
      h('td', { title: w.title }, w.events),
      h('td', { title: w.title }, w.relists),
      h('td', { class: 'error' }, c.error ? `${c.error.code}: ${c.error.message}` : ''),
    );
  });
  $('clusters').replaceChildren(...rows);
}

// ---- services ------------------------------------------------------------------------

function tierBar(svc) {
  const serving = svc.plan.tiers.filter((t) => t.load > 0);
  const bar = h('div', {
    class: 'tierbar',
    'data-testid': `tiers-${svc.key}`,
    role: 'img',
    'aria-label': svc.plan.summary,
  });
  if (serving.length === 0)
    bar.append(h('span', { class: 'tier none' }, 'nothing can take traffic'));
  for (const t of serving) {
    const clusters = Object.keys(t.clusters).join(', ');
    const seg = h(
      'span',
      {
        class: `tier ${t.scope}${t.panic ? ' panic' : ''}${t.stale ? ' stale' : ''}`,
        title: `P${t.priority} ${t.scope} ${place(t.locality)}: ${t.reason}`,
      },
      `P${t.priority} ${t.scope} ${pct(t.load)}${clusters ? ` · ${clusters}` : ''}`,
    );
    seg.style.flexGrow = String(Math.max(t.load, 0.08));
    bar.append(seg);
  }
  return bar;
}

function endpointRows(svc) {
  const rows = [];
  for (const c of svc.endpoints.clusters) {
    c.zones.forEach((z, i) => {
      const zone = z.zone ?? '(no zone)';
      const cells = STATES.map((s) =>
        h('td', { class: z[s] > 0 ? `n ${s}` : 'n zero' }, String(z[s])),
      );
      const attrs = {
        'data-testid': `endpoints-${svc.key}-${c.cluster}-${zone}`,
        'data-cluster': c.cluster,
        'data-zone': zone,
      };
      for (const s of STATES) attrs[`data-${s}`] = z[s];
      // The demo's scale action: a pod is a replica whatever its state, unless terminating.
      const replicas = STATES.filter((s) => s !== 'terminating').reduce((n, s) => n + z[s], 0);
      const scale = (delta, label) =>
        h(
          'button',
          {
            type: 'button',
            class: 'restore small',
            'data-testid': `scale-${svc.key}-${c.cluster}-${zone}-${delta > 0 ? 'up' : 'down'}`,
            title: `scale ${svc.key} in ${c.cluster}/${zone} to ${replicas + delta}`,
            disabled: replicas + delta < 0 || z.zone === undefined,
            onclick: () => runAction('scale', [svc.key, c.cluster, zone, String(replicas + delta)]),
          },
          label,
        );
      rows.push(
        h(
          'tr',
          attrs,
          i === 0
            ? h(
                'th',
                { scope: 'rowgroup', rowspan: c.zones.length },
                c.cluster,
                ' ',
                h('span', { class: `badge ${c.sync}` }, c.sync),
              )
            : null,
          h('td', {}, zone),
          cells,
          state.canScale ? h('td', { class: 'n scale' }, scale(-1, '−'), ' ', scale(1, '+')) : null,
        ),
      );
    });
    if (c.zones.length === 0) {
      rows.push(
        h(
          'tr',
          {},
          h(
            'th',
            { scope: 'row' },
            c.cluster,
            ' ',
            h('span', { class: `badge ${c.sync}` }, c.sync),
          ),
          h('td', { colspan: STATES.length + 1, class: 'zero' }, 'no endpoints'),
        ),
      );
    }
  }
  return rows;
}

/** How a service is actively checked: "checked every 5s (annotation)", or on demand only. */
function checksText(check) {
  if (!check) return 'no active checks';
  const every = seconds(check.effectiveIntervalMs);
  if (check.checked) return `checked every ${every} (${check.by})`;
  return check.targets > 0
    ? `checked on demand: ${check.targets} failing endpoint(s), every ${every}`
    : `checked on demand only (${check.by})`;
}

function seconds(ms) {
  return ms < 10_000 ? `${(ms / 1000).toFixed(ms % 1000 ? 1 : 0)}s` : `${Math.round(ms / 1000)}s`;
}

function renderServices(data) {
  $('services-hint').textContent =
    `Plans as fedgate's own locality (${place(data.self)}) sees them; the explain form below shows any client's.`;
  const hosts = new Set();
  const cards = data.services.map((svc) => {
    for (const n of svc.names) hosts.add(n);
    const warnings = [
      ...svc.conflicts.map((c) => `conflict on ${c.field}: ${c.reason}`),
      ...(svc.picker.problem ? [svc.picker.problem] : []),
    ];
    return h(
      'article',
      { class: 'service', 'data-testid': `service-${svc.key}` },
      h(
        'header',
        {},
        h('h3', {}, svc.key),
        h('span', { class: 'badge plain' }, svc.type),
        h(
          'span',
          { class: 'detail' },
          `ports ${svc.ports.map((p) => `${p.port}/${p.protocol}${p.name ? ` ${p.name}` : ''}`).join(', ')}`,
          ` · picker ${svc.picker.policy} (${svc.picker.source})`,
          ` · DNS answers ${svc.addressing}`,
          h('span', { 'data-testid': `checks-${svc.key}` }, ` · ${checksText(svc.healthCheck)}`),
        ),
        h(
          'button',
          {
            type: 'button',
            class: 'link',
            'data-testid': `explain-${svc.key}`,
            onclick: () => explainHost(svc.names[0] ?? '', ''),
          },
          'explain',
        ),
      ),
      h('p', { class: 'names' }, svc.names.join(' · ')),
      warnings.map((w) => h('p', { class: 'warning' }, w)),
      tierBar(svc),
      h('p', { class: 'summary', 'data-testid': `plan-${svc.key}` }, svc.plan.summary),
      h(
        'table',
        { class: 'grid endpoints' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', {}, 'cluster'),
            h('th', {}, 'zone'),
            STATES.map((s) => h('th', { class: 'n' }, STATE_LABELS[s])),
            state.canScale ? h('th', { class: 'n' }, 'scale') : null,
          ),
        ),
        h('tbody', {}, endpointRows(svc)),
      ),
    );
  });
  if (cards.length === 0) cards.push(h('p', { class: 'hint' }, 'No federated service yet.'));
  $('services').replaceChildren(...cards);
  $('explain-hosts').replaceChildren(...[...hosts].sort().map((n) => h('option', { value: n })));
}

// ---- demo controls -----------------------------------------------------------------------

async function runAction(action, args) {
  if (state.pendingAction) return;
  state.pendingAction = true;
  document.body.classList.add('busy');
  const result = $('action-result');
  result.dataset.state = 'running';
  result.textContent = `${action} ${args.join(' ')}…`;
  try {
    const res = await fetch('demo/actions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ action, args }),
      signal: AbortSignal.timeout(30_000),
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok || !body.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    result.dataset.state = 'ok';
    result.textContent = `${action} ${args.join(' ')}: ${body.message}`;
  } catch (e) {
    result.dataset.state = 'error';
    result.textContent = `${action} ${args.join(' ')} failed: ${e.message}`;
  } finally {
    state.pendingAction = false;
    document.body.classList.remove('busy');
    refreshSoon();
  }
}

function actionButton(have, name, args, label, enabled) {
  if (!have.has(name)) return null;
  return h(
    'button',
    {
      type: 'button',
      class: name.startsWith('fail') || name === 'api-down' ? 'danger' : 'restore',
      'data-testid': `action-${name}-${args[0]}`,
      disabled: !enabled,
      onclick: () => runAction(name, args),
    },
    label,
  );
}

function renderDemo(data) {
  const have = new Set(data.actions.map((a) => a.name));
  const status = data.status ?? {};
  const failedZones = new Set(status.failedZones ?? []);
  const cards = (status.clusters ?? []).map((c) => {
    const apiUp = c.apiMode === 'up';
    const clusterState = c.failed ? 'failed' : apiUp ? 'up' : `api-${c.apiMode}`;
    return h(
      'div',
      { class: 'card', 'data-testid': `demo-cluster-${c.name}`, 'data-state': clusterState },
      h(
        'h3',
        {},
        c.name,
        ' ',
        // Which API server the member runs: the simulator or kube-apiserver (--api).
        h('span', { class: 'detail' }, c.apiKind ? `${c.region}, API ${c.apiKind}` : c.region),
        ' ',
        h(
          'span',
          { class: `badge ${c.failed ? 'failed' : apiUp ? 'up' : 'stale'}` },
          c.failed ? 'off the network' : apiUp ? 'up' : `API ${c.apiMode}`,
        ),
      ),
      h(
        'div',
        { class: 'buttons' },
        actionButton(have, 'fail-cluster', [c.name], 'fail cluster', !c.failed),
        actionButton(have, 'restore-cluster', [c.name], 'restore cluster', c.failed),
        actionButton(have, 'api-down', [c.name], 'API down', apiUp && !c.failed),
        actionButton(have, 'api-up', [c.name], 'API up', !apiUp),
      ),
      h(
        'ul',
        { class: 'zones' },
        c.zones.map((z) => {
          const failed = failedZones.has(z);
          return h(
            'li',
            { 'data-testid': `zone-${z}`, 'data-state': failed ? 'failed' : 'up' },
            h('span', { class: 'zone-name' }, z),
            h('span', { class: `badge ${failed ? 'failed' : 'up'}` }, failed ? 'failed' : 'up'),
            actionButton(have, 'fail-zone', [z], 'fail zone', !failed),
            actionButton(have, 'restore-zone', [z], 'restore zone', failed),
          );
        }),
      ),
    );
  });
  $('demo-clusters').replaceChildren(...cards);
}

// ---- explain --------------------------------------------------------------------------------

async function explainHost(host, client) {
  $('explain-host').value = host;
  $('explain-client').value = client;
  const out = $('explain');
  const q = new URLSearchParams({ host });
  if (client) q.set('client', client);
  try {
    const res = await fetch(`debug/explain?${q}`, {
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    const x = await res.json();
    if (!res.ok) {
      out.replaceChildren(h('p', { class: 'warning' }, x.error ?? `HTTP ${res.status}`));
      return;
    }
    out.replaceChildren(
      h(
        'p',
        { class: 'summary' },
        `${x.host} → ${x.service} (${x.route.kind} name), planned from ${x.from === 'route' ? `the place the name names (${place(x.route.locality)})` : x.from === 'client' ? `the client ${x.client.address} in ${place(x.client.locality)} (${x.client.source})` : `fedgate's own locality (${place(x.client.locality)})`}`,
      ),
      x.note ? h('p', { class: 'hint' }, x.note) : null,
      h('p', {}, x.summary),
      h(
        'table',
        { class: 'grid' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['tier', 'where', 'eligible', 'health', 'load', 'why'].map((t) => h('th', {}, t)),
          ),
        ),
        h(
          'tbody',
          {},
          x.tiers.map((t) =>
            h(
              'tr',
              { class: t.verdict },
              h('td', {}, `P${t.priority} ${t.scope}${t.stale ? ' (stale)' : ''}`),
              h('td', {}, t.scope === 'other' ? t.regions.join(', ') || '–' : place(t.locality)),
              h('td', { class: 'n' }, `${t.eligible}/${t.total}`),
              h('td', { class: 'n' }, pct(t.health)),
              h('td', { class: 'n' }, pct(t.load)),
              h('td', {}, t.reason),
            ),
          ),
        ),
      ),
      x.excluded.length > 0
        ? h(
            'ul',
            { class: 'excluded' },
            x.excluded.map((e) => h('li', {}, `${e.id}: ${e.reason}`)),
          )
        : null,
    );
  } catch (e) {
    out.replaceChildren(h('p', { class: 'warning' }, `explain failed: ${e.message}`));
  }
}

// ---- events ------------------------------------------------------------------------------------

let eventsFrame = 0;
function renderEventsSoon() {
  if (eventsFrame) return;
  eventsFrame = requestAnimationFrame(() => {
    eventsFrame = 0;
    const shown = [...state.events.values()]
      .filter((e) => state.kinds.has(e.kind))
      .sort((a, b) => b.seq - a.seq)
      .slice(0, MAX_EVENTS);
    const items = shown.map((e) =>
      h(
        'li',
        { 'data-testid': 'event', 'data-kind': e.kind, 'data-seq': e.seq },
        h('time', { datetime: e.time }, new Date(e.at).toLocaleTimeString()),
        h('span', { class: `badge kind ${e.kind}` }, e.kind),
        h('span', { class: 'message' }, e.message),
      ),
    );
    if (items.length === 0) items.push(h('li', { class: 'hint' }, 'Nothing has happened yet.'));
    $('events').replaceChildren(...items);
  });
}

function addEvent(e) {
  state.events.set(e.seq, e);
  if (state.events.size > MAX_EVENTS * 2) {
    const oldest = [...state.events.keys()].sort((a, b) => a - b).slice(0, MAX_EVENTS);
    for (const k of oldest) state.events.delete(k);
  }
  renderEventsSoon();
}

function renderFilters() {
  $('event-filters').replaceChildren(
    ...KINDS.map((k) =>
      h(
        'label',
        { class: `badge kind ${k}` },
        h('input', {
          type: 'checkbox',
          checked: state.kinds.has(k),
          'data-testid': `filter-${k}`,
          onchange: (ev) => {
            if (ev.target.checked) state.kinds.add(k);
            else state.kinds.delete(k);
            renderEventsSoon();
          },
        }),
        k,
      ),
    ),
  );
}

function connectEvents() {
  const es = new EventSource('events/stream');
  es.addEventListener('hello', (m) => {
    const hello = JSON.parse(m.data);
    // A journal behind what we hold means fedgate restarted: its numbers start over.
    const newest = Math.max(0, ...state.events.keys());
    if (hello.lastSeq < newest) state.events.clear();
    setLive('live', 'live');
    renderEventsSoon();
  });
  es.onmessage = (m) => addEvent(JSON.parse(m.data));
  es.addEventListener('changed', () => refreshSoon());
  es.onerror = () => {
    setLive('down', 'reconnecting');
    // EventSource retries by itself unless the server answered with an error.
    if (es.readyState === EventSource.CLOSED) setTimeout(connectEvents, 3000);
  };
}

// ---- refresh loop ---------------------------------------------------------------------------------

let busy = false;
let again = false;
let soon = 0;

function refreshSoon() {
  clearTimeout(soon);
  soon = setTimeout(refresh, 50);
}

async function refresh() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    const [clusters, services, gateway, traffic, demo] = await Promise.all([
      getJson('debug/clusters'),
      getJson('debug/services'),
      getJson('debug/gateway'),
      getJson('debug/traffic'),
      state.demo === false ? null : getJson('demo/actions', { allow404: true }),
    ]);
    if (state.demo === undefined) state.demo = demo !== null;
    state.canScale = demo?.actions.some((a) => a.name === 'scale') ?? false;
    renderClusters(clusters);
    const { now: _now, ...servicesData } = services;
    renderIfChanged('services', servicesData, renderServices);
    renderIfChanged('gateway', gateway, renderGatewayApi);
    const { now: _at, ...trafficData } = traffic;
    renderIfChanged('traffic', trafficData, renderTraffic);
    if (demo) {
      $('demo').hidden = false;
      if (!state.pendingAction) renderIfChanged('demo', demo, renderDemo);
    }
    $('updated').textContent =
      `updated ${new Date().toLocaleTimeString()} · catalog v${services.catalogVersion}`;
    showProblem(null);
  } catch (e) {
    showProblem(`The admin API does not answer: ${e.message}. Retrying…`);
  } finally {
    busy = false;
    if (again) {
      again = false;
      refreshSoon();
    }
  }
}

$('explain-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  explainHost($('explain-host').value.trim(), $('explain-client').value.trim());
});
renderFilters();
renderEventsSoon();
connectEvents();
refresh();
setInterval(() => {
  if (!document.hidden) refresh();
}, POLL_MS);
