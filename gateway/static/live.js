// The live page: one WebSocket (book, trades, and with a key the user's orders), plain DOM and canvas.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { asset: null, socket: null, book: null, trades: [], key: null, orders: new Map(), fills: [] };

function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  return fetch(path, { ...options, headers }).then((r) => r.json());
}

function cell(row, text, cls) { const td = row.insertCell(); td.textContent = text; if (cls) td.className = cls; return td; }

async function start() {
  const assets = (await api("/api/v1/assets")).data || [];
  const wanted = new URLSearchParams(location.search).get("asset");
  for (const a of assets) { const o = new Option(`${a.asset_id} — ${a.name}`, a.asset_id); $("asset").add(o); }
  if (wanted) $("asset").value = wanted;
  $("asset").onchange = () => watch($("asset").value);
  connect();
}

function connect() {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/v1/ws`);
  state.socket = socket;
  socket.onopen = () => { $("status").textContent = "live"; if ($("asset").value) watch($("asset").value); if (state.key) login(); };
  socket.onclose = (e) => { $("status").textContent = `disconnected (${e.code}), reconnecting…`; setTimeout(connect, 1000); };
  socket.onmessage = (event) => receive(JSON.parse(event.data));
}

function send(frame) { if (state.socket && state.socket.readyState === 1) state.socket.send(JSON.stringify(frame)); }

function watch(asset) {
  if (state.asset) {  // also when resubscribing after a gap: only a new subscription brings a snapshot
    send({ op: "unsubscribe", channel: "book", asset_id: state.asset });
    send({ op: "unsubscribe", channel: "trades", asset_id: state.asset });
  }
  state.asset = asset; state.book = null; state.trades = [];
  send({ op: "subscribe", channel: "book", asset_id: asset });
  send({ op: "subscribe", channel: "trades", asset_id: asset });
  api(`/api/v1/assets/${asset}/trades?limit=30`).then((r) => { state.trades = (r.data || []).concat(state.trades).slice(0, 30); drawTrades(); });
  drawCandles();
}

function receive(frame) {
  // Answers to our ops carry `channel` and `asset_id` too: they are not book or trade frames.
  if (frame.op !== undefined) {
    if (frame.op === "auth") $("who").textContent = frame.success ? `signed in as ${frame.username}` : frame.error.message;
    return;
  }
  if (frame.channel === "book" && frame.asset_id === state.asset) return applyBook(frame);
  if (frame.channel === "trades" && frame.asset_id === state.asset) {
    state.trades.unshift(frame); state.trades.length = Math.min(state.trades.length, 30); drawTrades(); drawCandlesSoon();
    return;
  }
  if (frame.channel === "orders") { state.orders.set(frame.data.order_id, frame.data); drawOrders(); refreshPortfolioSoon(); return; }
  if (frame.channel === "fills") { state.fills.unshift(frame.data); state.fills.length = Math.min(state.fills.length, 30); drawFills(); return; }
}

function applyBook(frame) {
  if (frame.type === "snapshot") {
    state.book = { sequence: frame.sequence, bids: new Map(), asks: new Map() };
    for (const side of ["bids", "asks"]) for (const l of frame[side]) state.book[side].set(l.price, l);
  } else {
    if (!state.book) return;  // updates before our snapshot: it is on its way
    if (frame.first_sequence !== state.book.sequence + 1) return watch(state.asset);  // a gap: resubscribe
    state.book.sequence = frame.sequence;
    for (const side of ["bids", "asks"]) for (const l of frame[side]) {
      if (Number(l.quantity) === 0) state.book[side].delete(l.price); else state.book[side].set(l.price, l);
    }
  }
  drawBook();
}

function sorted(side) {
  const levels = [...state.book[side].values()];
  return levels.sort((a, b) => side === "bids" ? Number(b.price) - Number(a.price) : Number(a.price) - Number(b.price));
}

function drawBook() {
  const bids = sorted("bids"), asks = sorted("asks");
  $("sequence").textContent = state.book.sequence;
  const body = $("ladder").tBodies[0]; body.innerHTML = "";
  for (const l of asks.slice(0, 12).reverse()) { const r = body.insertRow(); r.dataset.price = l.price; r.dataset.side = "ask"; cell(r, ""); cell(r, l.price, "ask"); cell(r, l.quantity, "ask"); }
  for (const l of bids.slice(0, 12)) { const r = body.insertRow(); r.dataset.price = l.price; r.dataset.side = "bid"; cell(r, l.quantity, "bid"); cell(r, l.price, "bid"); cell(r, ""); }
  drawDepth(bids, asks);
}

function drawDepth(bids, asks) {
  const canvas = $("depth"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  const cum = (levels) => { let t = 0; return levels.map((l) => [Number(l.price), (t += Number(l.quantity))]); };
  const b = cum(bids), a = cum(asks);
  if (!b.length && !a.length) return;
  const prices = [...b, ...a].map((p) => p[0]), lo = Math.min(...prices), hi = Math.max(...prices);
  const top = Math.max(1e-12, ...b.map((p) => p[1]), ...a.map((p) => p[1]));
  const x = (p) => hi === lo ? w / 2 : ((p - lo) / (hi - lo)) * (w - 20) + 10, y = (q) => h - 10 - (q / top) * (h - 20);
  for (const [points, color] of [[b, "#4caf50"], [a, "#ef5350"]]) {
    if (!points.length) continue;
    g.strokeStyle = color; g.beginPath(); g.moveTo(x(points[0][0]), h - 10);
    for (const [p, q] of points) g.lineTo(x(p), y(q));
    g.stroke();
  }
}

let candleTimer = null;
function drawCandlesSoon() { if (!candleTimer) candleTimer = setTimeout(() => { candleTimer = null; drawCandles(); }, 1000); }
async function drawCandles() {
  if (!state.asset) return;
  const candles = ((await api(`/api/v1/assets/${state.asset}/candles?interval=1m&limit=60`)).data || {}).candles || [];
  const canvas = $("candles"), g = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  g.clearRect(0, 0, w, h);
  if (!candles.length) return;
  const lo = Math.min(...candles.map((c) => Number(c.low))), hi = Math.max(...candles.map((c) => Number(c.high)));
  const y = (p) => hi === lo ? h / 2 : h - 10 - ((p - lo) / (hi - lo)) * (h - 20), step = w / Math.max(candles.length, 20);
  candles.forEach((c, i) => {
    const up = Number(c.close) >= Number(c.open), cx = i * step + step / 2;
    g.strokeStyle = g.fillStyle = up ? "#4caf50" : "#ef5350";
    g.beginPath(); g.moveTo(cx, y(Number(c.high))); g.lineTo(cx, y(Number(c.low))); g.stroke();
    const top = y(Math.max(Number(c.open), Number(c.close))), bottom = y(Math.min(Number(c.open), Number(c.close)));
    g.fillRect(cx - step * 0.35, top, step * 0.7, Math.max(1, bottom - top));
  });
}

function drawTrades() {
  const body = $("trades").tBodies[0]; body.innerHTML = "";
  for (const t of state.trades) { const r = body.insertRow(); cell(r, t.timestamp.slice(11, 19)); cell(r, t.price, t.taker_side === "buy" ? "bid" : "ask"); cell(r, t.quantity); cell(r, t.taker_side); }
}

function login() {
  state.key = $("key").value.trim() || state.key;
  if (!state.key) return;
  send({ op: "auth", token: state.key });
  send({ op: "subscribe", channel: "orders" });
  api("/api/v1/orders?limit=100").then((r) => { for (const o of (r.data || {}).orders || []) if (!state.orders.has(o.order_id)) state.orders.set(o.order_id, o); drawOrders(); });
  refreshPortfolio();
}

function drawOrders() {
  const body = $("open_orders").tBodies[0]; body.innerHTML = "";
  const open = (o) => o.status === "confirmed" || o.status === "processing" || (o.status === "pending" && o.stop_price);
  for (const o of [...state.orders.values()].filter(open)) {
    const r = body.insertRow(); cell(r, o.asset_id); cell(r, o.order_type + (o.stop_price ? ` ${o.stop_kind} @${o.stop_price}` : ""));
    cell(r, o.price); cell(r, `${o.filled_quantity}/${o.quantity}`);
    const button = document.createElement("button"); button.textContent = "cancel"; button.className = "cancel";
    button.onclick = () => api(`/api/v1/orders/${o.order_id}`, { method: "DELETE" }).then((res) => { if (res.data) { state.orders.set(o.order_id, res.data); drawOrders(); } });
    r.insertCell().appendChild(button);
    // Amend: a new total quantity and/or price, asked for in two prompts (empty: unchanged).
    const amend = document.createElement("button"); amend.textContent = "amend"; amend.className = "amend";
    amend.onclick = () => {
      const body = {};
      const quantity = prompt(`New quantity (now ${o.quantity}; empty: unchanged)`, "");
      if (quantity) body.quantity = quantity;
      const price = o.order_type === "market_sell" ? "" : prompt(`New price (now ${o.price}; empty: unchanged)`, "");
      if (price) body.price = price;
      api(`/api/v1/orders/${o.order_id}`, { method: "PATCH", body: JSON.stringify(body) }).then((res) => {
        if (res.data) { state.orders.set(o.order_id, res.data); drawOrders(); } else if (res.error) alert(`${res.error.code}: ${res.message}`);
      });
    };
    r.lastChild.appendChild(amend);
  }
}

function drawFills() {
  const body = $("fills").tBodies[0]; body.innerHTML = "";
  for (const f of state.fills) { const r = body.insertRow(); cell(r, f.timestamp.slice(11, 19)); cell(r, f.asset_id); cell(r, f.transaction_type); cell(r, f.quantity); cell(r, f.price); }
}

let portfolioTimer = null;
function refreshPortfolioSoon() { if (!portfolioTimer) portfolioTimer = setTimeout(() => { portfolioTimer = null; refreshPortfolio(); }, 500); }
async function refreshPortfolio() {
  const p = (await api("/api/v1/portfolio")).data;
  if (!p) return;
  $("portfolio").textContent = `USD ${p.usd_balance} · assets ${p.total_asset_value} · total ${p.total_portfolio_value} · ` +
    p.assets.map((a) => `${a.asset_id} ${a.quantity}`).join(", ");
}

$("login").onclick = login;
$("order").onsubmit = async (event) => {
  event.preventDefault();
  const body = { asset_id: state.asset, order_type: $("order_type").value, quantity: $("quantity").value };
  if (body.order_type.startsWith("limit")) body.price = $("price").value;
  const r = await api("/api/v1/orders", { method: "POST", body: JSON.stringify(body) });
  $("order_result").textContent = r.success ? `${r.data.status}` : `${r.error.code}: ${r.message}`;
};
start();
