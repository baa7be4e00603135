// The dashboard polls /dashboard/state with the admin token and redraws in place.
"use strict";

const TOKEN_KEY = "wagerlab-admin-token";
let pollIntervalMs = 1000;
let previous = null;
let updates = 0;

function readToken() {
  const match = window.location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(match[1]));
    // Drop the token from the address bar, so it is not left in history or screenshots.
    history.replaceState(null, "", window.location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function setText(id, text) {
  const node = document.getElementById(id);
  const value = String(text);
  if (node.textContent !== value) {
    node.textContent = value;
    node.classList.remove("changed");
    void node.offsetWidth;  // restart the flash animation
    node.classList.add("changed");
  }
}

function setBadge(id, text, kind) {
  const node = document.getElementById(id);
  node.textContent = text;
  node.className = "badge " + (kind || "");
}

function row(cells) {
  const tr = el("tr");
  for (const cell of cells) tr.appendChild(el("td", cell));
  return tr;
}

function renderMarkets(markets) {
  const container = document.getElementById("markets");
  container.replaceChildren();
  for (const market of markets) {
    const box = el("div", null, "market");
    box.dataset.marketId = market.market_id;
    box.appendChild(el("h3", `#${market.market_id} ${market.name} (${market.status})`));
    const table = el("table");
    market.outcomes.forEach((outcome, index) => {
      const tr = row([outcome, market.odds[index] ?? "-"]);
      const old = previous && previous.markets.find((m) => m.market_id === market.market_id);
      if (old && old.odds[index] !== market.odds[index]) tr.classList.add("changed");
      table.appendChild(tr);
    });
    box.appendChild(table);
    container.appendChild(box);
  }
}

function renderMonitors(health) {
  const ok = health.status === "ok";
  setBadge("monitors-status", health.status, ok ? "ok" : "bad");
  const body = document.querySelector("#monitors tbody");
  body.replaceChildren();
  for (const [name, record] of Object.entries(health.monitors || {})) {
    body.appendChild(row([name, record.state, record.lag_blocks ?? "-", record.events_applied, record.last_error || ""]));
  }
  if (!ok && health.error) body.appendChild(row(["-", health.error, "", "", ""]));
}

function renderAlerts(alerts, reconciliation) {
  setBadge("alerts-total", `${alerts.total}`, alerts.total ? "warn" : "ok");
  const list = document.getElementById("alerts");
  list.replaceChildren();
  for (const alert of alerts.recent) {
    const time = new Date(alert.created_at).toLocaleTimeString();
    list.appendChild(el("li", `${time} ${alert.rule} (${alert.severity}) from ${alert.source}: ${alert.detail}`, alert.severity));
  }
  if (!alerts.recent.length) list.appendChild(el("li", "no alerts"));
  const latest = reconciliation.latest;
  document.getElementById("reconciliation").textContent = latest
    ? `Reconciliation: ${reconciliation.corrections} corrections, latest ${latest.kind} on ${latest.subject}`
    : "Reconciliation: no corrections";
}

function renderBets(bets, time) {
  setText("bets-total", bets.total);
  setText("bets-open", bets.open);
  setText("stake-total", bets.stake_total);
  if (previous) {
    const seconds = (time - previous.time) / 1000;
    if (seconds > 0) setText("bets-rate", ((bets.total - previous.bets.total) / seconds).toFixed(1));
  }
  const body = document.querySelector("#bets tbody");
  body.replaceChildren();
  for (const bet of bets.recent) {
    body.appendChild(row([bet.bet_id, bet.market_id, bet.outcome, bet.stake, bet.odds, bet.status, bet.bettor.slice(0, 10) + "…"]));
  }
}

function render(state) {
  renderBets(state.bets, state.time);
  renderMarkets(state.markets);
  renderMonitors(state.monitors);
  renderAlerts(state.alerts, state.reconciliation);
  const ratio = state.cache.hit_ratio;
  setText("cache-ratio", ratio === null ? "-" : `${(ratio * 100).toFixed(1)} %`);
  setText("corrections", state.reconciliation.corrections);
  if (state.paused === null) setBadge("pause-state", "pause state unknown (node unreachable)", "warn");
  else setBadge("pause-state", state.paused ? "PAUSED" : "betting open", state.paused ? "bad" : "ok");
  updates += 1;
  document.body.dataset.updates = String(updates);
  document.getElementById("updated").textContent = `updated ${new Date(state.time).toLocaleTimeString()}`;
  previous = state;
}

// Fetch one state and draw it; return false when the page must wait for a token.
async function refresh() {
  const token = readToken();
  if (!token) {
    document.getElementById("login").hidden = false;
    return false;
  }
  try {
    const response = await fetch("/dashboard/state", { headers: { Authorization: `Bearer ${token}` }, cache: "no-store" });
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      document.getElementById("login").hidden = false;
      document.getElementById("login-error").textContent = "the admin token was rejected";
      setBadge("connection", "unauthorized", "bad");
      return false;
    }
    const state = await response.json();
    pollIntervalMs = state.poll_interval_ms || pollIntervalMs;
    render(state);
    setBadge("connection", "live", "ok");
  } catch (error) {
    setBadge("connection", "api unreachable", "bad");
  }
  return true;
}

async function poll() {
  if (await refresh()) setTimeout(poll, pollIntervalMs);
}

async function guardian(action) {
  const result = document.getElementById("action-result");
  result.textContent = `${action}: sending…`;
  try {
    const response = await fetch(`/api/admin/${action}`, { method: "POST", headers: { Authorization: `Bearer ${readToken()}` } });
    const body = await response.json();
    result.textContent = response.ok ? `${action}: mined in ${body.tx_hash.slice(0, 12)}…` : `${action} failed: ${body.detail}`;
    if (response.ok) refresh();
  } catch (error) {
    result.textContent = `${action} failed: ${error}`;
  }
}

document.getElementById("pause").addEventListener("click", () => guardian("pause"));
document.getElementById("unpause").addEventListener("click", () => guardian("unpause"));
document.getElementById("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
  document.getElementById("login").hidden = true;
  document.getElementById("login-error").textContent = "";
  poll();
});
poll();
