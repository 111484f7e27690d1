// Group pages. Forms with data-confirm ask first. The batch page follows the status of every
// deployment of the request over its websocket (the badges and the summary come rendered by
// the server); while the socket is down (it reconnects with back-off) it polls one small JSON
// endpoint instead, until all have finished.
import { follow, fragment } from "./live.js";

for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

const table = document.getElementById("batch");
if (table) {
  const POLL_MS = 1000;
  let done = false;
  let connected = false;
  let polling = false;
  // A control (deployments.controls): hidden, enabled, or disabled with the reason beside it.
  const setControl = (form, control) => {
    form.hidden = !control.shown;
    form.querySelector("button").disabled = !control.allowed;
    form.querySelector(".disabled-reason").textContent = control.disabled ? control.reason : "";
  };
  const render = (data) => {
    for (const row of data.rows) {
      const tr = table.querySelector(`tr[data-deployment="${row.id}"]`);
      if (!tr) continue;
      tr.querySelector(".batch-status .badge").replaceWith(fragment(row.badge_html));
      tr.querySelector(".batch-status .reason").textContent = row.reason;
      setControl(tr.querySelector(".batch-actions form:not(.revert)"), row.cancel);
      setControl(tr.querySelector(".batch-actions form.revert"), row.revert);
    }
    document.getElementById("batch-summary").replaceChildren(fragment(data.summary_html));
    setControl(document.getElementById("cancel-all"), data.cancel_all);
    setControl(document.getElementById("revert-all"), data.revert_all);
    done = data.rows.every((row) => row.finished);
    return done;
  };
  const poll = async () => {
    if (done || connected) {
      polling = false;
      return;
    }
    try {
      const response = await fetch(table.dataset.statusUrl, { credentials: "same-origin" });
      if (response.ok && render(await response.json())) return;
    } catch (error) {
      // The server restarts or the network blips: keep polling.
    }
    setTimeout(poll, POLL_MS);
  };
  const socket = follow(table.dataset.ws, {
    onOpen: () => {
      connected = true;
    },
    onMessage: (payload) => {
      if (render(payload)) socket.close();
    },
    onClose: () => {
      connected = false;
      if (!done && !polling) {
        polling = true;
        poll();
      }
    },
  });
}
