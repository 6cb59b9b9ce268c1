"use strict";
// Every value from the broker is shown with textContent (never innerHTML): a device id or an
// error string containing HTML renders as text.
(function () {
  const token = new URLSearchParams(location.search).get("token") || "";
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  const main = document.getElementById("devices");
  const broker = document.getElementById("broker");
  const notice = document.getElementById("notice");

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function say(text) {
    notice.hidden = !text;
    notice.textContent = text || "";
  }

  async function set(device, name, on) {
    const headers = { "Content-Type": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    try {
      const r = await fetch("api/set", {
        method: "POST",
        headers: headers,
        body: JSON.stringify({ device: device, switch: name, on: on }),
      });
      if (!r.ok) say("command refused by the dashboard: " + (await r.text()));
      else say("");
    } catch (e) {
      say("dashboard unreachable: " + e);
    }
  }

  function outcomeText(c) {
    switch (c.outcome) {
      case "ok": return c.confirmed ? "ok, confirmed by state" : "ok";
      case "error": return "error: " + c.error;
      case "timed_out": return "timed out (no reply)";
      default: return "waiting for reply…";
    }
  }

  function deviceCard(d) {
    const card = el("section", "device");
    card.dataset.device = d.id;
    card.dataset.online = String(d.online);
    const h = el("h2");
    h.appendChild(el("span", "device-id", d.id));
    const status = d.online === true ? "online" : d.online === false ? "offline" : "unknown";
    h.appendChild(el("span", "status " + status, status));
    card.appendChild(h);

    const pending = new Set(d.commands.filter(c => c.outcome === "pending").map(c => c.switch));
    const sw = el("div", "switches");
    for (const s of d.switches) {
      const b = el("button", "toggle", s.name + ": " + (s.on ? "ON" : "off"));
      b.type = "button";
      b.setAttribute("role", "switch");
      b.setAttribute("aria-checked", String(s.on));
      b.dataset.switch = s.name;
      b.disabled = pending.has(s.name) || d.online !== true;
      b.addEventListener("click", () => { b.disabled = true; set(d.id, s.name, !s.on); });
      sw.appendChild(b);
    }
    card.appendChild(sw);

    const dl = el("dl");
    const row = (k, v, cls) => { dl.appendChild(el("dt", null, k)); dl.appendChild(el("dd", cls, v)); };
    row("uptime", d.uptime_s === null ? "–" : d.uptime_s + " s (last report)", "uptime");
    row("reconnects", d.reconnects === null ? "–" : d.reconnects, "reconnects");
    row("last failure", d.last_failure === null ? "none" : d.last_failure, "last-failure");
    card.appendChild(dl);

    if (d.commands.length) {
      const t = el("table", "commands");
      const head = el("tr");
      for (const k of ["command", "id", "outcome"]) head.appendChild(el("th", null, k));
      t.appendChild(head);
      for (const c of d.commands) {
        const tr = el("tr", "command");
        tr.dataset.id = c.id;
        tr.dataset.outcome = c.outcome;
        tr.appendChild(el("td", null, c.switch + " → " + (c.on ? "on" : "off")));
        tr.appendChild(el("td", "cmd-id", c.id));
        tr.appendChild(el("td", "outcome outcome-" + c.outcome, outcomeText(c)));
        t.appendChild(tr);
      }
      card.appendChild(t);
    }
    return card;
  }

  function render(snap) {
    broker.className = snap.broker === null ? "broker" : "broker down";
    broker.textContent = snap.broker === null ? "broker: connected" : "broker: " + snap.broker;
    const cards = snap.devices.map(deviceCard);
    if (!cards.length) cards.push(el("p", "empty", "No device has reported yet."));
    main.replaceChildren(...cards);
  }

  const events = new EventSource("events" + query);
  events.onmessage = (ev) => render(JSON.parse(ev.data));
  events.onerror = () => {
    broker.className = "broker down";
    broker.textContent = "dashboard server unreachable, retrying…";
  };
  window.dashboard = { set: set };
})();
