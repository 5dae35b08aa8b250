// The status page: polls the management API with the key the operator typed, and draws.
// Every text from the API goes in through textContent, never as markup: a service name or an
// error message is data, not code (the Content-Security-Policy forbids inline script too).
"use strict";

const KEY_NAME = "ray_enterprise.api_key";
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const NODE_W = 118;
const NODE_H = 34;
// Colours by what an operator needs to know, not one per registry state: "starting" after a
// crash is the service coming back, so it shows as restarting until it is healthy again.
const PHASES = ["healthy", "degraded", "unhealthy", "restarting", "failed", "stopped", "pending"];

const ui = { selectedService: null, selectedTrace: null, timer: null, inFlight: false, drawnGraph: null };

function $(id) { return document.getElementById(id); }

function html(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

class Unauthorized extends Error {}

// One request with the key; resolves to {status, ok, body}. A 401 means the key is no good:
// forget it and ask again, instead of polling on with it.
async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_NAME);
  if (!key) throw new Unauthorized("no key");
  const headers = { Authorization: "Bearer " + key, ...(options.headers || {}) };
  if (options.json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.json !== undefined ? JSON.stringify(options.json) : undefined,
    cache: "no-store",
  });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (response.status === 401) {
    signOut("The API refused this key (401): enter another.");
    throw new Unauthorized("401");
  }
  return { status: response.status, ok: response.ok, body };
}

function refusalText(answer, scope) {
  if (answer.status === 403) return `Refused (403): this key lacks the ${scope} scope.`;
  if (answer.status === 429) return "Refused (429): rate limited, retrying.";
  const error = answer.body && answer.body.error ? answer.body.error : "";
  return `Failed (${answer.status}) ${error}`;
}

// ---------------------------------------------------------------- service graph

function phaseOf(service) {
  if (service.state === "starting" && service.restarts > 0) return "restarting";
  if (service.state === "starting" || service.state === "pending") return "pending";
  if (service.state === "stopping") return "stopped";
  return PHASES.includes(service.state) ? service.state : "pending";
}

function describe(service) {
  return [
    `${service.name}: ${service.state}`,
    `criticality: ${service.criticality}`,
    `node: ${service.node_id || "-"}`,
    `restarts: ${service.restarts} (generation ${service.generation})`,
    `depends on: ${service.depends_on.join(", ") || "-"}`,
    `last error: ${service.last_error || "-"}`,
  ].join("\n");
}

// Layered layout: one column per dependency level (dependencies left of their dependents),
// services of a level stacked and centred; edges run from a dependency to its dependent.
function layout(levels, width, height) {
  const at = {};
  const columns = Math.max(1, levels.length);
  const dx = columns > 1 ? (width - NODE_W - 20) / (columns - 1) : 0;
  levels.forEach((level, i) => {
    const dy = height / (level.length + 1);
    level.forEach((name, j) => {
      at[name] = { x: 10 + i * dx, y: dy * (j + 1) - NODE_H / 2 };
    });
  });
  return at;
}

// Redrawn only when something shown changed: a redraw every poll would close an open tooltip.
function drawGraph(status) {
  const graph = $("graph");
  const drawn = JSON.stringify([status.levels, status.services, ui.selectedService, graph.clientWidth]);
  if (drawn === ui.drawnGraph) return;
  ui.drawnGraph = drawn;
  const width = graph.clientWidth || 700;
  const height = Math.max(200, 60 * Math.max(1, ...status.levels.map((l) => l.length)));
  graph.setAttribute("viewBox", `0 0 ${width} ${height}`);
  graph.style.height = height + "px";
  clear(graph);
  const defs = svg("defs");
  const marker = svg("marker", {
    id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5,
    markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse",
  });
  marker.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: "#888" }));
  defs.appendChild(marker);
  graph.appendChild(defs);
  const at = layout(status.levels, width, height);
  const byName = Object.fromEntries(status.services.map((s) => [s.name, s]));
  for (const service of status.services) {
    for (const dep of service.depends_on) {
      const from = at[dep];
      const to = at[service.name];
      if (!from || !to) continue;
      const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2, x2 = to.x, y2 = to.y + NODE_H / 2;
      const mid = (x1 + x2) / 2;
      graph.appendChild(svg("path", {
        class: "edge", d: `M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`,
        "data-from": dep, "data-to": service.name,
      }));
    }
  }
  for (const name of Object.keys(at)) {
    const service = byName[name];
    if (!service) continue;
    const phase = phaseOf(service);
    const classes = ["node", "state-" + phase];
    if (ui.selectedService === name) classes.push("selected");
    const g = svg("g", {
      class: classes.join(" "), "data-service": name, "data-state": service.state,
      "data-phase": phase, transform: `translate(${at[name].x},${at[name].y})`, tabindex: 0,
    });
    g.appendChild(svg("title", {}, describe(service)));
    g.appendChild(svg("rect", { width: NODE_W, height: NODE_H, rx: 5 }));
    g.appendChild(svg("text", { x: 8, y: 14 }, name));
    g.appendChild(svg("text", { x: 8, y: 28 }, `${service.state} · ${service.criticality}`));
    g.addEventListener("click", () => {
      ui.selectedService = ui.selectedService === name ? null : name;
      drawGraph(status);
    });
    graph.appendChild(g);
  }
  const detail = $("node-detail");
  const chosen = byName[ui.selectedService];
  detail.hidden = !chosen;
  detail.textContent = chosen ? describe(chosen) : "";
}

function drawLegend() {
  const legend = $("legend");
  clear(legend);
  for (const phase of PHASES) {
    const item = html("li");
    item.appendChild(html("span", { class: "swatch state-" + phase }));
    item.appendChild(document.createTextNode(phase));
    legend.appendChild(item);
  }
}

async function refreshStatus() {
  const answer = await api("status");
  if (!answer.ok) { $("verdict").textContent = refusalText(answer, "status:read"); return; }
  const status = answer.body;
  const verdict = $("verdict");
  verdict.textContent = status.status;
  verdict.className = "verdict " + status.status;
  drawGraph(status);
}

// ---------------------------------------------------------------- health score

async function refreshHealth() {
  const answer = await api("health");
  if (!answer.ok) return;
  const report = answer.body;
  $("score").textContent = `${Math.round(report.score)} / 100`;
  const reasons = $("reasons");
  clear(reasons);
  const list = report.reasons && report.reasons.length ? report.reasons : ["all healthy"];
  for (const reason of list) {
    reasons.appendChild(html("li", {}, typeof reason === "string" ? reason : JSON.stringify(reason)));
  }
}

// ---------------------------------------------------------------- alerts

async function alertAction(alert, action) {
  const message = $("alerts-message");
  const answer = await api(`alerts/${encodeURIComponent(alert.id)}/${action}`, {
    method: "POST", json: { reason: "from the status page" },
  });
  if (answer.ok) {
    message.className = "ok";
    message.textContent = `${action === "silence" ? "Silenced" : action === "ack" ? "Acknowledged" : "Unacknowledged"} ${alert.labels.alertname}.`;
    await refreshAlerts();
  } else {
    message.className = "refusal";
    message.textContent = refusalText(answer, "alerts:ack");
  }
}

async function refreshAlerts() {
  const answer = await api("alerts");
  const body = $("alerts").querySelector("tbody");
  if (!answer.ok) { $("alerts-message").textContent = refusalText(answer, "status:read"); return; }
  clear(body);
  const open = answer.body.filter((a) => a.state === "firing" || a.state === "acknowledged");
  if (!open.length) {
    const row = html("tr");
    row.appendChild(html("td", { colspan: 6, class: "muted" }, "nothing firing"));
    body.appendChild(row);
  }
  for (const alert of open) {
    const row = html("tr", { "data-alert-id": alert.id, "data-state": alert.state });
    row.appendChild(html("td", { class: "sev-" + alert.severity }, alert.severity));
    row.appendChild(html("td", {}, alert.labels.alertname || ""));
    row.appendChild(html("td", {}, alert.labels.service || "-"));
    const state = alert.suppressed ? `${alert.state} (silenced)` : alert.state;
    row.appendChild(html("td", { class: "alert-state" }, state));
    row.appendChild(html("td", { class: "summary" }, (alert.annotations && alert.annotations.summary) || ""));
    const actions = html("td", { class: "actions" });
    const acked = alert.state === "acknowledged";
    const ack = html("button", { type: "button", class: acked ? "unack" : "ack" }, acked ? "Unacknowledge" : "Acknowledge");
    ack.addEventListener("click", () => alertAction(alert, acked ? "unack" : "ack"));
    const silence = html("button", { type: "button", class: "silence" }, "Silence 1h");
    silence.addEventListener("click", () => alertAction(alert, "silence"));
    actions.appendChild(ack);
    actions.appendChild(silence);
    row.appendChild(actions);
    body.appendChild(row);
  }
}

// ---------------------------------------------------------------- metric series

// Plot geometry in viewBox units; the svg keeps its aspect ratio so the axis labels stay legible.
const PLOT = { w: 260, h: 96, left: 44, right: 6, top: 6, bottom: 22 };

function tickText(v) {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-2)) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

function clockText(seconds) {
  return new Date(seconds * 1000).toISOString().slice(11, 19);
}

// Axes: the y axis with its lowest, middle and highest value and the unit, the x axis with the
// wall-clock time (UTC) at both ends and the middle, so a point can be read off the plot.
function drawAxes(plot, x, y, t0, t1, lo, hi, unit) {
  const { w, h, left, right, top, bottom } = PLOT;
  const yAxis = svg("g", { class: "axis y" });
  yAxis.appendChild(svg("line", { x1: left, y1: top, x2: left, y2: h - bottom }));
  const levels = hi === lo ? [lo] : [lo, (lo + hi) / 2, hi];
  for (const v of levels) {
    yAxis.appendChild(svg("line", { class: "tick", x1: left - 3, y1: y(v), x2: left, y2: y(v) }));
    yAxis.appendChild(svg("text", { class: "tick", x: left - 5, y: y(v) + 3, "text-anchor": "end" }, tickText(v)));
  }
  const middle = (top + h - bottom) / 2;
  yAxis.appendChild(svg("text", { class: "unit", x: -middle, y: 7, transform: "rotate(-90)", "text-anchor": "middle" }, unit || "value"));
  plot.appendChild(yAxis);
  const xAxis = svg("g", { class: "axis x" });
  xAxis.appendChild(svg("line", { x1: left, y1: h - bottom, x2: w - right, y2: h - bottom }));
  const times = [t0, (t0 + t1) / 2, t1];
  times.forEach((t, i) => {
    const anchor = ["start", "middle", "end"][i];
    xAxis.appendChild(svg("line", { class: "tick", x1: x(t), y1: h - bottom, x2: x(t), y2: h - bottom + 3 }));
    xAxis.appendChild(svg("text", { class: "tick", x: x(t), y: h - bottom + 12, "text-anchor": anchor }, clockText(t)));
  });
  xAxis.appendChild(svg("text", { class: "unit", x: w - right, y: h - 1, "text-anchor": "end" }, "time (UTC)"));
  plot.appendChild(xAxis);
}

function drawPlot(series, events) {
  const box = html("div", { class: "plot", "data-series": series.series, "data-anomalies": events.length });
  const unit = series.unit || "";
  box.appendChild(html("div", { class: "title", title: series.series }, `${series.series}  last ${Number(series.last).toPrecision(4)}${unit ? " " + unit : ""}`));
  const { w, h, left, right, top, bottom } = PLOT;
  const plot = svg("svg", { viewBox: `0 0 ${w} ${h}`, "data-unit": unit });
  const points = series.points;
  if (points.length) {
    const t0 = Math.min(points[0][0], ...events.map((e) => e.timestamp));
    const t1 = Math.max(points[points.length - 1][0], t0 + 1);
    const values = points.map((p) => p[1]).concat(events.map((e) => e.value));
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    const x = (t) => left + 2 + ((w - left - right - 4) * (t - t0)) / (t1 - t0);
    const mid = (top + h - bottom) / 2;
    const y = (v) => (hi === lo ? mid : h - bottom - 2 - ((h - bottom - top - 4) * (v - lo)) / (hi - lo));
    drawAxes(plot, x, y, t0, t1, lo, hi, unit);
    plot.appendChild(svg("polyline", { points: points.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ") }));
    if (points.length === 1) plot.appendChild(svg("circle", { class: "point", cx: x(points[0][0]), cy: y(points[0][1]), r: 2 }));
    for (const e of events) {
      const mark = svg("circle", { class: "anomaly", cx: x(e.timestamp), cy: y(e.value), r: 3 });
      mark.appendChild(svg("title", {}, `anomaly: value ${e.value}${unit ? " " + unit : ""}, score ${Number(e.score).toFixed(3)}, confidence ${Number(e.confidence).toFixed(2)} (${e.detector})`));
      plot.appendChild(mark);
    }
  }
  box.appendChild(plot);
  return box;
}

async function refreshSeries() {
  const answer = await api("series");
  if (!answer.ok) return;
  const data = answer.body;
  $("detector").textContent = data.shards
    ? `detector: ${data.detectors.join(", ") || "?"} on ${data.shards} anomaly shard(s); ${data.events.length} event(s)`
    : "no anomaly shards run: series are plotted without detection";
  const byKey = {};
  for (const e of data.events) (byKey[e.series] = byKey[e.series] || []).push(e);
  const list = $("series");
  clear(list);
  const series = data.series.slice().sort((a, b) => {
    const d = (byKey[b.series] || []).length - (byKey[a.series] || []).length;
    return d || a.series.localeCompare(b.series);
  });
  for (const s of series.slice(0, 60)) list.appendChild(drawPlot(s, byKey[s.series] || []));
}

// ---------------------------------------------------------------- configuration

function diffText(diff) {
  const lines = [];
  for (const [section, changes] of Object.entries(diff || {})) {
    for (const c of changes) {
      lines.push(`${c.kind} ${c.path}: ${JSON.stringify(c.old)} → ${JSON.stringify(c.new)}`);
    }
    if (!changes.length) lines.push(section);
  }
  return lines.join("\n") || "no changes";
}

async function rollback(version) {
  const message = $("config-message");
  const answer = await api(`config/rollback/${version}`, { method: "POST" });
  if (answer.ok) {
    message.className = "ok";
    message.textContent = `Rolled back to version ${version}: now version ${answer.body.version}.`;
    await refreshConfig();
  } else {
    message.className = "refusal";
    message.textContent = refusalText(answer, "config:write");
  }
}

async function refreshConfig() {
  const [current, history] = await Promise.all([api("config"), api("config/history?limit=15")]);
  if (!current.ok) {
    $("config-version").textContent = refusalText(current, "config:read");
    return;
  }
  $("config-version").textContent = `running version ${current.body.version}`;
  if (!history.ok) return;
  const list = $("config-history");
  clear(list);
  for (const record of history.body.slice().reverse()) {
    const item = html("li", { value: record.version, "data-version": record.version });
    const when = new Date(record.created_at * 1000).toLocaleTimeString();
    item.appendChild(html("strong", {}, `v${record.version}`));
    item.appendChild(document.createTextNode(` ${record.source} at ${when} `));
    if (record.version !== current.body.version) {
      const button = html("button", { type: "button", class: "rollback" }, "Roll back to this");
      button.addEventListener("click", () => rollback(record.version));
      item.appendChild(button);
    }
    item.appendChild(html("pre", {}, diffText(record.diff)));
    list.appendChild(item);
  }
}

// ---------------------------------------------------------------- traces

async function drawWaterfall(traceId) {
  const answer = await api(`traces/${encodeURIComponent(traceId)}`);
  const chart = $("waterfall");
  clear(chart);
  if (!answer.ok) { $("waterfall-title").textContent = `trace ${traceId}: ${answer.status}`; return; }
  const spans = answer.body.spans;
  const start = Math.min(...spans.map((s) => s.start_ns));
  const end = Math.max(...spans.map((s) => s.end_ns));
  const total = Math.max(1, end - start);
  const width = chart.clientWidth || 600;
  const label = 200;
  const row = 18;
  chart.setAttribute("viewBox", `0 0 ${width} ${row * spans.length + 4}`);
  chart.style.height = row * spans.length + 4 + "px";
  const depth = {};
  spans.forEach((s, i) => {
    depth[s.span_id] = s.parent_id && depth[s.parent_id] !== undefined ? depth[s.parent_id] + 1 : 0;
    const x = label + ((width - label - 10) * (s.start_ns - start)) / total;
    const w = Math.max(2, ((width - label - 10) * (s.end_ns - s.start_ns)) / total);
    const y = i * row + 2;
    const g = svg("g", { class: "span", "data-span": s.span_id });
    g.appendChild(svg("title", {}, `${s.service} ${s.name}: ${((s.end_ns - s.start_ns) / 1e6).toFixed(2)} ms, ${s.status}${s.error ? " — " + s.error : ""}`));
    g.appendChild(svg("text", { x: 4 + 10 * depth[s.span_id], y: y + 12 }, `${s.service}: ${s.name}`));
    g.appendChild(svg("rect", { x, y, width: w, height: row - 4, class: s.status === "success" ? "ok" : "error" }));
    chart.appendChild(g);
  });
  $("waterfall-title").textContent = `trace ${traceId}: ${spans.length} span(s), ${(total / 1e6).toFixed(2)} ms`;
}

async function refreshTraces() {
  const answer = await api("traces?limit=15");
  if (!answer.ok) return;
  const list = $("traces");
  clear(list);
  for (const t of answer.body) {
    const item = html("li", { "data-trace": t.trace_id }, `${t.trace_id.slice(0, 12)}…  ${t.service}: ${t.name}  ${t.duration_ms.toFixed(1)} ms  ${t.spans} span(s)${t.errors ? "  " + t.errors + " error(s)" : ""}`);
    if (t.trace_id === ui.selectedTrace) item.classList.add("selected");
    item.addEventListener("click", () => { ui.selectedTrace = t.trace_id; refreshTraces(); });
    list.appendChild(item);
  }
  if (!ui.selectedTrace && answer.body.length) ui.selectedTrace = answer.body[0].trace_id;
  if (ui.selectedTrace) await drawWaterfall(ui.selectedTrace);
}

// ---------------------------------------------------------------- the loop

async function tick() {
  if (ui.inFlight) return;
  ui.inFlight = true;
  try {
    const results = await Promise.allSettled([
      refreshStatus(), refreshHealth(), refreshAlerts(), refreshSeries(), refreshConfig(), refreshTraces(),
    ]);
    if (results.some((r) => r.status === "rejected" && r.reason instanceof Unauthorized)) return;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } finally {
    ui.inFlight = false;
  }
}

function signIn(key) {
  sessionStorage.setItem(KEY_NAME, key);
  $("login").hidden = true;
  $("board").hidden = false;
  $("forget").hidden = false;
  tick();
  if (ui.timer === null) ui.timer = setInterval(tick, POLL_MS);
}

function signOut(reason) {
  sessionStorage.removeItem(KEY_NAME);
  if (ui.timer !== null) { clearInterval(ui.timer); ui.timer = null; }
  $("board").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
}

document.addEventListener("DOMContentLoaded", () => {
  drawLegend();
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (key) signIn(key);
  });
  $("forget").addEventListener("click", () => signOut(""));
  const saved = sessionStorage.getItem(KEY_NAME);
  if (saved) signIn(saved); else signOut("");
});
