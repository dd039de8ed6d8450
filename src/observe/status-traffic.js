// The status page's traffic section, drawn from /debug/traffic as SVG (no build step,
// nothing from elsewhere): per service a flow picture of the last minute (client
// localities left, serving clusters and zones right, band width the requests or DNS
// answers, the failed share red), and per service and per cluster sparklines of the
// last 15 minutes (rate, error rate, p99). status-page.js calls renderTraffic.

const SVG_NS = 'http://www.w3.org/2000/svg';
const FLOW_WIDTH = 560;
const NODE_WIDTH = 10;
const ROW = 26;
const SPARK_W = 180;
const SPARK_H = 28;

/** An SVG element with attributes and children; strings become text nodes. */
function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) el.append(c);
  return el;
}

const fromLabel = (f) => f || 'unknown locality';
const toLabel = (f) => (f.cluster ? `${f.cluster} · ${f.zone || 'no zone'}` : 'nothing served');
const toKey = (f) => `${f.cluster}/${f.zone}`;
const amount = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** Nodes of one side: their flows stacked, in order, each node's share of the height. */
function stack(flows, keyOf, scale, top, gap) {
  const nodes = new Map();
  for (const f of flows) {
    const key = keyOf(f);
    const n = nodes.get(key) ?? { key, total: 0, failed: 0, flows: [] };
    n.total += f.count;
    n.failed += f.failed;
    n.flows.push(f);
    nodes.set(key, n);
  }
  let y = top;
  for (const n of nodes.values()) {
    n.y = y;
    n.h = Math.max(2, n.total * scale);
    y += n.h + gap;
  }
  return nodes;
}

/** One band as a stroked curve from left (x1, y1) to right (x2, y2), `w` thick. */
function band(x1, y1, x2, y2, w, cls, attrs) {
  const mid = (x1 + x2) / 2;
  return svg('path', {
    d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`,
    'stroke-width': Math.max(1, w),
    class: cls,
    fill: 'none',
    ...attrs,
  });
}

/** The flow picture of one service and protocol (`http` requests or `dns` answers). */
function flowPicture(service, protocol, flows) {
  const total = flows.reduce((a, f) => a + f.count, 0);
  const lefts = new Set(flows.map((f) => f.from)).size;
  const rights = new Set(flows.map(toKey)).size;
  const gap = 12;
  const rows = Math.max(lefts, rights);
  const height = Math.max(60, rows * ROW + 40);
  const scale = (height - 20 - gap * (rows - 1)) / Math.max(total, 1e-9);
  const left = stack(flows, (f) => f.from, scale, 10, gap);
  const right = stack(flows, toKey, scale, 10, gap);
  const x1 = 150 + NODE_WIDTH;
  const x2 = FLOW_WIDTH - 170;
  const bands = [];
  const leftAt = new Map([...left.values()].map((n) => [n.key, n.y]));
  const rightAt = new Map([...right.values()].map((n) => [n.key, n.y]));
  for (const f of flows) {
    const h = f.count * scale;
    const failedH = f.failed * scale;
    const okH = h - failedH;
    const ly = leftAt.get(f.from);
    const ry = rightAt.get(toKey(f));
    leftAt.set(f.from, ly + h);
    rightAt.set(toKey(f), ry + h);
    const attrs = {
      'data-from': f.from,
      'data-cluster': f.cluster,
      'data-zone': f.zone,
      'data-count': f.count,
      'data-failed': f.failed,
    };
    const title = svg(
      'title',
      {},
      `${fromLabel(f.from)} → ${toLabel(f)}: ${amount(f.count)} ${protocol === 'dns' ? 'answers' : 'requests'}, ${amount(f.failed)} failed`,
    );
    const g = svg('g', { 'data-testid': 'flow', ...attrs }, title);
    if (okH > 0) g.append(band(x1, ly + okH / 2, x2, ry + okH / 2, okH, 'band ok'));
    if (failedH > 0) {
      g.append(
        band(x1, ly + okH + failedH / 2, x2, ry + okH + failedH / 2, failedH, 'band failed'),
      );
    }
    bands.push(g);
  }
  const nodeRects = (nodes, x, anchor, tx, side, label) =>
    [...nodes.values()].map((n) =>
      svg(
        'g',
        { 'data-testid': `${side}-node`, 'data-key': n.key, 'data-count': n.total },
        svg('rect', {
          x,
          y: n.y,
          width: NODE_WIDTH,
          height: n.h,
          class: n.failed >= n.total && n.total > 0 ? 'node failed' : 'node',
        }),
        svg(
          'text',
          {
            x: tx,
            y: n.y + n.h / 2,
            'text-anchor': anchor,
            'dominant-baseline': 'middle',
            class: 'node-label',
          },
          `${label(n)} ${amount(n.total)}`,
        ),
      ),
    );
  return svg(
    'svg',
    {
      'data-testid': `traffic-${service}-${protocol}`,
      viewBox: `0 0 ${FLOW_WIDTH} ${height}`,
      width: FLOW_WIDTH,
      height,
      class: 'flow',
      role: 'img',
      'aria-label': `${service} ${protocol} traffic of the last minute`,
    },
    bands,
    nodeRects(left, 150, 'end', 144, 'from', (n) => fromLabel(n.key)),
    nodeRects(right, x2, 'start', x2 + NODE_WIDTH + 6, 'to', (n) => toLabel(n.flows[0])),
  );
}

/** A sparkline of one measure, 15 minutes, oldest left; gaps (null) drawn as zero. */
function sparkline(testid, points, max, cls) {
  const n = points.length;
  const top = Math.max(max, 1e-9);
  const xy = points.map(
    (v, i) =>
      `${((i / Math.max(n - 1, 1)) * SPARK_W).toFixed(1)},${(SPARK_H - 1 - ((v ?? 0) / top) * (SPARK_H - 2)).toFixed(1)}`,
  );
  const last = points.at(-1);
  return svg(
    'svg',
    {
      'data-testid': testid,
      'data-last': last ?? '',
      width: SPARK_W,
      height: SPARK_H,
      viewBox: `0 0 ${SPARK_W} ${SPARK_H}`,
      class: `spark ${cls}`,
    },
    svg('polyline', { points: xy.join(' '), fill: 'none' }),
  );
}

/** The last slot's value for the cell beside a sparkline (the slot now filling). */
function lastText(points, fmt) {
  for (let i = points.length - 1; i >= Math.max(0, points.length - 2); i--) {
    if (points[i] !== null && points[i] !== undefined) return fmt(points[i]);
  }
  return '–';
}

function sparkRow(kind, name, series) {
  const rate = series.map((p) => p.rate);
  const errors = series.map((p) => p.errorRate);
  const p99 = series.map((p) => p.p99Ms);
  const id = `spark-${kind}-${name}`;
  const cell = (...c) => {
    const td = document.createElement('td');
    td.append(...c);
    return td;
  };
  const tr = document.createElement('tr');
  tr.setAttribute('data-testid', `${kind}-traffic-${name}`);
  tr.append(
    cell(name),
    cell(
      sparkline(`${id}-rate`, rate, Math.max(...rate), 'rate'),
      ` ${lastText(rate, (v) => `${v.toFixed(1)}/s`)}`,
    ),
    cell(
      sparkline(`${id}-errors`, errors, 1, 'errors'),
      ` ${lastText(errors, (v) => `${Math.round(v * 100)} %`)}`,
    ),
    cell(
      sparkline(`${id}-p99`, p99, Math.max(...p99.map((v) => v ?? 0)), 'p99'),
      ` ${lastText(p99, (v) => `${v} ms`)}`,
    ),
  );
  return tr;
}

function sparkTable(kind, rows) {
  const table = document.createElement('table');
  table.className = 'grid sparks';
  const head = document.createElement('tr');
  for (const t of [kind, 'requests/s', 'errors', 'p99']) {
    const th = document.createElement('th');
    th.textContent = t;
    head.append(th);
  }
  table.append(head, ...rows);
  return table;
}

/** The traffic section: flow pictures, then the services' and clusters' sparklines. */
// biome-ignore lint/correctness/noUnusedVariables: status-page.js calls it.
function renderTraffic(data) {
  const flows = document.getElementById('traffic-flows');
  const sparks = document.getElementById('traffic-sparks');
  flows.replaceChildren();
  for (const s of data.services) {
    for (const protocol of ['http', 'dns']) {
      const own = s.flows.filter((f) => f.protocol === protocol && f.count > 0);
      if (own.length === 0) continue;
      const fig = document.createElement('figure');
      fig.className = 'flow-figure';
      const cap = document.createElement('figcaption');
      cap.textContent = `${s.service} · ${protocol === 'dns' ? 'DNS answers' : 'requests'}, last ${data.windowSeconds} s`;
      fig.append(cap, flowPicture(s.service, protocol, own));
      flows.append(fig);
    }
  }
  if (flows.childElementCount === 0) {
    const p = document.createElement('p');
    p.className = 'hint';
    p.textContent = 'No traffic in the last minute.';
    flows.append(p);
  }
  sparks.replaceChildren(
    sparkTable(
      'service',
      data.services.map((s) => sparkRow('service', s.service, s.series)),
    ),
    sparkTable(
      'cluster',
      data.clusters.map((c) => sparkRow('cluster', c.cluster, c.series)),
    ),
  );
}
