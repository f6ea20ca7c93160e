// appletap's live dashboard: polls the sensor's JSON API and renders it. Every value that came
// from the network (names, models, reasons) is set with textContent, never parsed as HTML: a
// device can call itself anything.
"use strict";

const POLL_MS = 5000;
const COLORS = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04",
  "#dc2626", "#4b5563", "#65a30d"];
const MAX_SERIES = 8;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function fmtCount(n) {
  if (n === null || n === undefined) return "–";
  return Number(n).toLocaleString("en-US");
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let u = 0;
  let v = Number(n);
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return (u === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[u];
}

function fillTable(id, rows, empty, columns) {
  const body = document.querySelector("#" + id + " tbody");
  const cols = columns || (document.querySelectorAll("#" + id + " thead th").length || 2);
  body.replaceChildren();
  if (!rows.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: cols }, empty)));
    return;
  }
  for (const r of rows) body.append(r);
}

function renderHealth(health) {
  const box = document.getElementById("health");
  box.replaceChildren();
  const lines = (health && health.health) || [];
  if (!lines.length) {
    box.append(el("p", { class: "muted" }, "No connection attempts to Apple services yet."));
    return;
  }
  const rank = { blocked: 0, degraded: 1, inconclusive: 2, ok: 3 };
  const sorted = [...lines].sort((a, b) =>
    (rank[a.verdict] ?? 9) - (rank[b.verdict] ?? 9) || a.service.localeCompare(b.service));
  for (const h of sorted) {
    const card = el("div", { class: "card " + h.verdict, "data-service": h.service, "data-verdict": h.verdict },
      el("h3", {}, h.service, el("span", { class: "verdict " + h.verdict }, h.verdict)),
      el("p", {}, h.reason),
      el("p", { class: "muted" }, h.counted));
    if (h.allow) {
      const what = [...(h.allow.ports || []), ...(h.allow.hosts || [])].join(", ");
      card.append(el("p", { class: "allow" }, "Allow: " + what +
        (h.allow.sources && h.allow.sources.length ? " (" + h.allow.sources.join("; ") + ")" : "")));
    }
    box.append(card);
  }
}

function renderServices(report) {
  const rows = ((report && report.services) || []).map(s =>
    el("tr", { "data-service": s.service },
      el("td", {}, s.service), el("td", {}, s.name),
      el("td", { class: "n" }, fmtCount(s.flows)), el("td", { class: "n" }, fmtCount(s.packets)),
      el("td", { class: "n" }, fmtBytes(s.bytes)), el("td", { class: "n" }, fmtCount(s.certain)),
      el("td", { class: "n" }, fmtCount(s.likely)), el("td", { class: "n" }, fmtCount(s.possible))));
  fillTable("services", rows, "No flows yet.");
}

function renderBonjour(report) {
  const rows = ((report && report.bonjour) || []).map(b =>
    el("tr", {},
      el("td", {}, b.type), el("td", {}, b.service || ""),
      el("td", { class: "n" }, fmtCount((b.announced_by || []).length)),
      el("td", { class: "n" }, fmtCount((b.searched_by || []).length)),
      el("td", {}, (b.instances || []).slice(0, 5).join(", "))));
  fillTable("bonjour", rows, "No Bonjour announcements or queries seen.");
}

function renderUnexpected(health) {
  const rows = ((health && health.unexpected) || []).map(u =>
    el("tr", { "data-kind": u.kind },
      el("td", {}, u.kind), el("td", {}, u.name ? u.server + " (" + u.name + ")" : u.server),
      el("td", {}, u.proto + " " + u.port), el("td", { class: "n" }, fmtCount(u.flows)),
      el("td", {}, u.reason)));
  // Floods and scans are kept apart from the services' health: listed here, with their reason.
  const fs = (health && health.floods_and_scans) || {};
  for (const f of fs.floods || []) {
    rows.push(el("tr", { "data-kind": "flood" },
      el("td", {}, "flood"), el("td", {}, f.server + (f.service ? " (" + f.service + ")" : "")),
      el("td", {}, f.proto + " " + f.port), el("td", { class: "n" }, fmtCount(f.unanswered)),
      el("td", {}, f.reason)));
  }
  for (const sc of fs.scans || []) {
    rows.push(el("tr", { "data-kind": "scan" },
      el("td", {}, "scan"), el("td", {}, sc.source), el("td", {}, fmtCount(sc.ports) + " ports"),
      el("td", { class: "n" }, fmtCount(sc.unanswered)), el("td", {}, sc.reason)));
  }
  fillTable("unexpected", rows, "Nothing unexpected.");
}

function listOf(v) {
  if (!v) return "";
  if (Array.isArray(v)) return v.map(x => (typeof x === "object" ? JSON.stringify(x) : x)).join(", ");
  return String(v);
}

// /api/devices: { by_kind: {kind: n}, devices: [Device], max_devices, announcements_dropped,
// flows_dropped }; a Device has key, mac, vendor, randomized_mac, ips, host_names,
// instance_names, models, dhcp {host_name, vendor_class}, service_types, kind, evidence, flows,
// services [{service, flows, bytes, failed}], failed [service].
function renderDevices(devices) {
  const kinds = document.getElementById("device-kinds");
  kinds.replaceChildren();
  const byKind = (devices && devices.by_kind) || {};
  for (const [k, n] of Object.entries(byKind)) {
    if (!n) continue;
    kinds.append(el("span", { class: "kind", "data-kind": k }, k + ": " + fmtCount(n)));
  }
  const rows = ((devices && devices.devices) || []).map(d => {
    const used = (d.services || []).map(s => s.service + " (" + fmtCount(s.flows) + ")").join(", ");
    const failed = (d.failed || []).join(", ");
    const names = [...(d.host_names || []), ...(d.instance_names || [])];
    if (d.dhcp && d.dhcp.host_name && !names.includes(d.dhcp.host_name)) names.push(d.dhcp.host_name);
    const vendor = [d.vendor, d.randomized_mac ? "randomized MAC" : null].filter(Boolean).join(" · ");
    return el("tr", { "data-device": d.key, "data-kind": d.kind },
      el("td", {}, d.key, vendor ? el("div", { class: "muted" }, vendor) : null),
      el("td", { class: "device-kind", title: (d.evidence || []).join("; ") }, d.kind || ""),
      el("td", {}, names.join(", ")), el("td", {}, listOf(d.models)),
      el("td", {}, listOf(d.ips)), el("td", {}, used), el("td", {}, failed));
  });
  fillTable("devices", rows, "No devices seen yet.");
  const dropped = devices ? (devices.announcements_dropped || 0) + (devices.flows_dropped || 0) : 0;
  if (dropped) {
    kinds.append(el("span", { class: "kind" }, "left out at --max-devices " +
      fmtCount(devices.max_devices) + ": " + fmtCount(dropped)));
  }
}

function renderCapture(report, meta) {
  const t = (report && report.totals) || {};
  const d = (report && report.drops) || {};
  const rows = [
    ["packets read", fmtCount(t.packets_read)], ["bytes read", fmtBytes(t.bytes_read)],
    ["packets skipped", fmtCount(t.packets_skipped)], ["flows", fmtCount(t.flows)],
    ["active flows", fmtCount(t.flows_active)], ["flows evicted", fmtCount(t.flows_evicted)],
    ["packets the kernel delivered", fmtCount(d.kernel_received)],
    ["kernel drops", fmtCount(d.kernel)], ["interface drops", fmtCount(d.interface)],
    ["pipeline drops", fmtCount(d.pipeline)],
  ].map(([k, v]) => el("tr", { "data-key": k }, el("th", {}, k), el("td", { class: "n" }, v)));
  fillTable("capture", rows, "", 2);
  const inputs = (report && report.inputs) || [];
  document.getElementById("source").textContent = inputs.map(i => i.file).join(", ") +
    (report && report.appletap_version ? " · appletap " + report.appletap_version : "") +
    (meta ? " · " + meta : "");
}

// Per-second rates of each service between consecutive history points (counters are cumulative).
function rates(points, field) {
  const series = new Map();
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    const dt = b.t - a.t;
    if (dt <= 0) continue;
    for (const [svc, v] of Object.entries(b.services || {})) {
      const prev = (a.services && a.services[svc] && a.services[svc][field]) || 0;
      const r = Math.max(0, (v[field] || 0) - prev) / dt;
      if (!series.has(svc)) series.set(svc, []);
      series.get(svc).push([b.t, r]);
    }
  }
  return series;
}

function topServices(points) {
  const last = points.length ? points[points.length - 1].services || {} : {};
  return Object.entries(last).sort((a, b) => (b[1].bytes || 0) - (a[1].bytes || 0))
    .slice(0, MAX_SERIES).map(([k]) => k);
}

function drawChart(id, series, names, fmt, t0, t1) {
  const root = document.getElementById(id);
  root.replaceChildren();
  const W = root.clientWidth || 600, H = root.clientHeight || 200, L = 60, B = 18, T = 6;
  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  let max = 0;
  for (const n of names) for (const [, v] of series.get(n) || []) max = Math.max(max, v);
  if (max === 0) max = 1;
  const x = t => L + (W - L - 4) * (t - t0) / Math.max(1, t1 - t0);
  const y = v => T + (H - T - B) * (1 - v / max);
  for (const f of [0, 0.5, 1]) {
    root.append(svg("line", { x1: L, x2: W - 4, y1: y(max * f), y2: y(max * f), stroke: "#e4e7ec" }));
    const label = svg("text", { x: L - 4, y: y(max * f) + 3, "text-anchor": "end" });
    label.textContent = fmt(max * f);
    root.append(label);
  }
  const span = t1 - t0;
  const axis = svg("text", { x: L, y: H - 4 });
  axis.textContent = span >= 60 ? `${Math.round(span / 60)} min ago` : span > 0 ? `${span} s ago` : "";
  root.append(axis);
  const now = svg("text", { x: W - 4, y: H - 4, "text-anchor": "end" });
  now.textContent = "now";
  root.append(now);
  names.forEach((n, i) => {
    const pts = series.get(n) || [];
    if (!pts.length) return;
    const d = pts.map(([t, v], j) => (j ? "L" : "M") + x(t).toFixed(1) + "," + y(v).toFixed(1)).join("");
    root.append(svg("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.6, "data-service": n }));
  });
}

function renderHistory(history) {
  const points = (history && history.points) || [];
  const names = topServices(points);
  const t1 = points.length ? points[points.length - 1].t : 0;
  const t0 = points.length ? Math.max(points[0].t, t1 - 3600) : 0;
  const recent = points.filter(p => p.t >= t0);
  drawChart("chart-bytes", rates(recent, "bytes"), names, fmtBytes, t0, t1);
  drawChart("chart-flows", rates(recent, "flows"), names, v => v.toFixed(v < 10 ? 1 : 0), t0, t1);
  const legend = document.getElementById("legend");
  // The swatch's colour is set through the CSSOM: the page's CSP (style-src 'self') blocks
  // inline style attributes, not style properties set from a script.
  legend.replaceChildren(...names.map((n, i) => {
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = COLORS[i % COLORS.length];
    return el("span", { "data-service": n }, swatch, n);
  }));
  if (points.length < 2) {
    legend.append(el("span", { class: "muted" },
      "Rates appear after two samples (one every " + ((history && history.interval_secs) || 10) + " s)."));
  }
}

async function getJson(path) {
  // Resolved against the origin, not the page's URL: a page opened as http://user:pw@host/
  // would give URLs with credentials, which fetch refuses; the browser re-sends the basic-auth
  // credentials it holds for the origin by itself.
  const r = await fetch(new URL(path, location.origin), { cache: "no-store", credentials: "same-origin" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return r.json();
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [report, health, devices, history] = await Promise.all([
      getJson("/api/report"), getJson("/api/health"), getJson("/api/devices"), getJson("/api/history"),
    ]);
    renderHealth(health);
    renderServices(report);
    renderDevices(devices);
    renderUnexpected(health);
    renderBonjour(report);
    renderCapture(report);
    renderHistory(history);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
    status.textContent = "live";
    status.className = "status";
    document.body.dataset.loaded = "1";
  } catch (e) {
    status.textContent = "not updating: " + e.message;
    status.className = "status stale";
  }
}

refresh();
setInterval(refresh, POLL_MS);
