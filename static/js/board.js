// The status board: one socket for the whole board (ws/status-board/, which follows every
// environment the board shows). Each message updates the cells of one environment: the running
// sha, the health (ready/desired), drift and "deploying". The page is complete without it; this
// only keeps it current.
import { follow } from "./live.js";

const table = document.getElementById("board");
const connection = document.getElementById("board-connection");
if (table) {
  const live = new Set();
  const show = () => {
    connection.textContent = live.size
      ? `Live: ${[...live].sort().join(", ")}`
      : "Waiting for live updates…";
  };
  const health = (entry) => {
    if (entry.deploying) return "deploying";
    return entry.ready >= entry.desired ? "healthy" : "degraded";
  };
  const update = (payload) => {
    const env = payload.environment;
    for (const entry of payload.services) {
      const cell = table.querySelector(
        `td.cell[data-env="${CSS.escape(env)}"][data-key="${CSS.escape(entry.key)}"]`,
      );
      if (!cell) continue;
      const state = health(entry);
      cell.className = cell.className.replace(/\bhealth-\S+/, `health-${state}`);
      const badge = cell.querySelector(".badge.health");
      badge.dataset.health = state;
      badge.textContent = `${state} ${entry.ready}/${entry.desired}`;
      const sha = cell.querySelector(".sha");
      if (entry.sha && sha && !sha.title.startsWith(entry.sha)) sha.textContent = entry.sha.slice(0, 8);
      let drift = cell.querySelector(".badge.drift");
      if (entry.drifted && !drift) {
        drift = document.createElement("span");
        drift.className = "badge drift";
        drift.textContent = "drifted";
        badge.after(drift);
      } else if (!entry.drifted && drift) drift.remove();
    }
  };
  follow(table.dataset.ws, {
    onMessage: (payload) => {
      if (payload.type !== "environment.board") return;
      if (payload.reachable) live.add(payload.environment);
      else live.delete(payload.environment);
      update(payload);
      show();
    },
    onClose: () => {
      live.clear();
      show();
    },
  });
}
