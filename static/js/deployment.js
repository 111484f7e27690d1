// Live deployment page. The websocket pushes "deployment.status" (the badge, rendered by the
// server) and "deployment.timeline" (one entry, rendered by the server from the same partial as
// the page): from the worker through the channel layer with Redis, or from the web server
// following the row when the channel layer is in-memory. The page resyncs from the server on
// every (re)connect and whenever the status changes (the actions and the snapshot change too),
// and every few seconds only while the socket is down.
import { follow, fragment, resyncFromPage } from "./live.js";

const root = document.getElementById("deployment");
const TERMINAL = new Set(["DONE", "FAILED", "CANCELED"]);
const POLL_MS = { disconnected: 2000 };

function appendEntries(list, html) {
  const known = new Set([...list.children].map((li) => li.dataset.key));
  for (const li of [...fragment(html).children]) {
    if (!known.has(li.dataset.key)) list.append(li);
  }
}

function mergeTimeline(list, fresh) {
  // Keep live entries that arrived while the page was loading.
  const known = new Set([...fresh.children].map((li) => li.dataset.key));
  const extra = [...list.children].filter((li) => !known.has(li.dataset.key));
  list.replaceChildren(...fresh.children, ...extra);
}

if (root) {
  const list = document.getElementById("timeline");
  let connected = false;
  let status = root.dataset.status;
  let timer = null;

  const schedule = () => {
    clearTimeout(timer);
    if (!connected && !TERMINAL.has(status)) timer = setTimeout(resync, POLL_MS.disconnected);
  };

  async function resync() {
    try {
      // A finished deployment's actions do not change by themselves: not replaced then, so a
      // reason being typed (roll back and mark bad) is not wiped when the socket connects.
      const actions = TERMINAL.has(status) ? [] : ["actions"];
      const page = await resyncFromPage(["status", "status-reason", "phases", ...actions, "snapshot"]);
      if (!page) return;
      const freshList = page.getElementById("timeline");
      if (freshList) mergeTimeline(list, freshList);
      const freshRoot = page.getElementById("deployment");
      if (freshRoot) status = root.dataset.status = freshRoot.dataset.status;
    } catch (error) {
      // The server restarts, the network blips or the page is closing: the next resync
      // (on reconnect, or the poll while disconnected) catches up.
    } finally {
      schedule();
    }
  }

  let phasesTimer = null;
  const refreshPhases = () => {
    if (phasesTimer) return;
    phasesTimer = setTimeout(async () => {
      phasesTimer = null;
      try {
        await resyncFromPage(["phases"]);
      } catch (error) {
        // As in resync: the next refresh catches up.
      }
    }, 1000);
  };

  follow(root.dataset.ws, {
    onOpen: () => {
      connected = true;
      resync();
    },
    onMessage: (payload) => {
      if (payload.type === "deployment.timeline") {
        appendEntries(list, payload.html);
        // A rollout note carries the pod counts the phases show: refresh them, at most once
        // a second.
        if (payload.source === "rollout") refreshPhases();
        return;
      }
      if (payload.type !== "deployment.status") return;
      document.getElementById("status").innerHTML = payload.badge_html;
      document.getElementById("status-reason").textContent = payload.status_reason || "—";
      if (payload.status !== status) resync(); // the actions and the snapshot change too
    },
    onClose: () => {
      connected = false;
      schedule();
    },
  });
  schedule();
  // The elapsed time ticks in the browser while the deployment runs (the server renders it
  // at each refresh).
  setInterval(() => {
    const box = document.getElementById("phases");
    const elapsed = document.getElementById("elapsed");
    if (TERMINAL.has(status) || !box || !elapsed) return;
    const seconds = Math.max(0, (Date.now() - Date.parse(box.dataset.created)) / 1000);
    elapsed.textContent = seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
  }, 1000);
}
