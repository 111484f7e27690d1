// The environment page: one websocket (live.js: reconnect with back-off); each message replaces
// the live part (rendered by the server for this viewer). Action forms ask for confirmation and
// carry the page's CSRF token.
import { follow } from "./live.js";

const root = document.getElementById("live-status");
if (root) {
  const services = document.getElementById("live-services");
  const connection = document.getElementById("live-connection");
  const show = (text, down) => {
    connection.textContent = text;
    connection.classList.toggle("down", Boolean(down));
  };
  follow(root.dataset.ws, {
    onOpen: () => show("Live: waiting for the cluster…"),
    onMessage: (payload) => {
      if (payload.type !== "environment.state") return;
      services.innerHTML = payload.html;
      const at = new Date(payload.updated_at).toLocaleTimeString();
      if (payload.reachable) show(`Live · updated ${at}`);
      else show(`Cluster unreachable (${payload.error}) · retrying`, true);
    },
    onClose: (code, retrying) => {
      if (retrying) show("Disconnected from Apollo; reconnecting…", true);
      else show("Not allowed to watch this environment.", true);
    },
  });
  services.addEventListener("submit", (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      return;
    }
    const token = document.createElement("input");
    token.type = "hidden";
    token.name = "csrfmiddlewaretoken";
    token.value = root.dataset.csrf;
    form.appendChild(token);
  });
  // Ages tick in the browser: the server sends a new state only when something changes.
  const age = (since) => {
    let s = Math.max(0, Math.floor((Date.now() - Date.parse(since)) / 1000));
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
      if (s >= size) return `${Math.floor(s / size)}${unit}`;
    }
    return `${s}s`;
  };
  setInterval(() => {
    for (const el of services.querySelectorAll("time[data-since]")) {
      if (el.dataset.since) el.textContent = age(el.dataset.since);
    }
  }, 5000);
}
