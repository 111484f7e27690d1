// Live deployment page. The websocket pushes "deployment.status" (the badge) and
// "deployment.timeline" (one entry): from the worker through the channel layer with Redis, or
// from the web server following the row when the channel layer is in-memory. The page resyncs
// from the server on every (re)connect and whenever the status changes (the actions and the
// snapshot change too), and every few seconds only while the socket is down.
const root = document.getElementById("deployment");
const TERMINAL = new Set(["DONE", "FAILED", "CANCELED"]);
const POLL_MS = { disconnected: 2000 };

const keyOf = (entry) => `${entry.at}|${entry.source}|${entry.message}`;

function appendEntry(list, entry) {
  const key = keyOf(entry);
  for (const li of list.children) if (li.dataset.key === key) return;
  const li = document.createElement("li");
  li.dataset.key = key;
  const time = document.createElement("time");
  time.dateTime = entry.at;
  time.textContent = String(entry.at).slice(11, 19);
  const source = document.createElement("span");
  source.className = "source";
  source.textContent = entry.source;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = entry.message;
  li.append(time, " ", source, " ", text);
  list.append(li);
}

function mergeTimeline(list, fresh) {
  // Keep live entries that arrived while the page was loading.
  const known = new Set([...fresh.children].map((li) => li.dataset.key));
  const extra = [...list.children].filter((li) => !known.has(li.dataset.key));
  list.replaceChildren(...fresh.children, ...extra);
}

if (root) {
  const list = document.getElementById("timeline");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let delay = 1000;
  let connected = false;
  let status = root.dataset.status;
  let timer = null;

  const schedule = () => {
    clearTimeout(timer);
    if (!connected && !TERMINAL.has(status)) timer = setTimeout(resync, POLL_MS.disconnected);
  };

  async function resync() {
    try {
      const response = await fetch(location.href, { credentials: "same-origin" });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      for (const id of ["status", "status-reason", "actions", "snapshot"]) {
        const fresh = page.getElementById(id);
        const current = document.getElementById(id);
        if (fresh && current) current.replaceWith(fresh);
      }
      const freshList = page.getElementById("timeline");
      if (freshList) mergeTimeline(list, freshList);
      const freshRoot = page.getElementById("deployment");
      if (freshRoot) status = root.dataset.status = freshRoot.dataset.status;
    } finally {
      schedule();
    }
  }

  const connect = () => {
    const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.ws}`);
    socket.addEventListener("open", () => { delay = 1000; connected = true; resync(); });
    socket.addEventListener("message", (event) => {
      const payload = JSON.parse(event.data);
      if (payload.type === "deployment.timeline") {
        appendEntry(list, payload);
        return;
      }
      if (payload.type !== "deployment.status") return;
      document.getElementById("status").innerHTML = payload.badge_html;
      document.getElementById("status-reason").textContent = payload.status_reason || "—";
      if (payload.status !== status) resync();  // the actions and the snapshot change too
    });
    socket.addEventListener("close", (event) => {
      connected = false;
      schedule();
      if (event.code === 4401 || event.code === 4404) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
  schedule();
}
