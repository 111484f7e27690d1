// Live deployment page: one websocket. "deployment.status" replaces the status badge (and, once
// the deployment has finished, reloads the actions and the snapshot); "deployment.timeline"
// appends an entry. On every (re)connect the timeline is reloaded so that entries written while
// the socket was closed are not missed.
const root = document.getElementById("deployment");
const TERMINAL = new Set(["DONE", "FAILED", "CANCELED"]);

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

async function reloadTimeline(list) {
  const response = await fetch(root.dataset.timeline, { credentials: "same-origin" });
  if (!response.ok) return;
  const fresh = document.createElement("ol");
  fresh.innerHTML = await response.text();
  // Keep live entries that arrived while the fragment was loading.
  const known = new Set([...fresh.children].map((li) => li.dataset.key));
  const extra = [...list.children].filter((li) => !known.has(li.dataset.key));
  list.replaceChildren(...fresh.children, ...extra);
}

async function reloadSections(ids) {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const fresh = page.getElementById(id);
    const current = document.getElementById(id);
    if (fresh && current) current.replaceWith(fresh);
  }
}

if (root) {
  const list = document.getElementById("timeline");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let delay = 1000;
  let status = root.dataset.status;
  const connect = () => {
    const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.ws}`);
    socket.addEventListener("open", () => { delay = 1000; reloadTimeline(list); });
    socket.addEventListener("message", (event) => {
      const payload = JSON.parse(event.data);
      if (payload.type === "deployment.timeline") {
        appendEntry(list, payload);
        return;
      }
      if (payload.type !== "deployment.status") return;
      document.getElementById("status").innerHTML = payload.badge_html;
      document.getElementById("status-reason").textContent = payload.status_reason || "—";
      if (payload.status !== status) {
        status = payload.status;
        root.dataset.status = status;
        if (TERMINAL.has(status)) {
          reloadSections(["actions", "snapshot"]);
          reloadTimeline(list);
        } else {
          reloadSections(["actions"]);
        }
      }
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4404) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
}
