// Group pages. Forms with data-confirm ask first. The batch page follows the status of every
// deployment of the request over its websocket; if the socket cannot connect (or closes before
// all have finished) it polls one small JSON endpoint instead, until all have finished.
for (const form of document.querySelectorAll("form[data-confirm]")) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

const table = document.getElementById("batch");
if (table) {
  const POLL_MS = 1000;
  const render = (data) => {
    for (const row of data.rows) {
      const tr = table.querySelector(`tr[data-deployment="${row.id}"]`);
      if (!tr) continue;
      const badge = tr.querySelector(".batch-status .badge");
      badge.textContent = row.status;
      badge.className = `badge status-${row.status.toLowerCase()}`;
      tr.querySelector(".batch-status .reason").textContent = row.reason;
      tr.querySelector(".batch-actions form:not(.revert)").hidden = !row.can_cancel;
      tr.querySelector(".batch-actions form.revert").hidden = !row.can_revert;
    }
    const summary = document.getElementById("batch-summary");
    summary.replaceChildren(...Object.entries(data.summary).map(([status, n]) => {
      const span = document.createElement("span");
      span.className = `badge status-${status.toLowerCase()}`;
      span.textContent = `${n} ${status}`;
      return span;
    }));
    return data.rows.every((row) => row.finished);
  };
  const poll = async () => {
    try {
      const response = await fetch(table.dataset.statusUrl, { credentials: "same-origin" });
      if (response.ok && render(await response.json())) return;
    } catch (error) {
      // The server restarts or the network blips: keep polling.
    }
    setTimeout(poll, POLL_MS);
  };
  let done = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${table.dataset.ws}`);
  socket.addEventListener("message", (event) => {
    done = render(JSON.parse(event.data));
    if (done) socket.close();
  });
  socket.addEventListener("close", () => {
    if (!done) poll();
  });
}
