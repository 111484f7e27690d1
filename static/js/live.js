// One live-update socket for every live page (deployment, batch, environment, LiveTail, shell).
// It is written once here: the URL from the page's origin, JSON in and out, reconnect with
// exponential back-off (1 s doubling to 30 s, reset once a socket opens), and a resync hook
// (`onOpen` runs on the first connect and on every reconnect, so a page catches up on what it
// missed while down). The server renders markup: pages swap in the fragments it sends (the
// same `_partials` the templates include) rather than building HTML here.
// Close codes 4401 (sign in), 4403 (forbidden) and 4404 (not found) are the server's refusal:
// never retried.
const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
export const REFUSED = new Set([4401, 4403, 4404]);

/**
 * Follow the socket at `path` (e.g. "/ws/deployments/7/").
 * Handlers: onOpen(), onMessage(payload), onClose(code, retrying).
 * `reconnect: false` for sessions that cannot resume (a shell, a log tail).
 * Returns { send(payload), close() }.
 */
export function follow(path, { onOpen, onMessage, onClose, reconnect = true } = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let delay = FIRST_DELAY_MS;
  let stopped = false;
  let socket = null;
  const connect = () => {
    socket = new WebSocket(`${scheme}//${location.host}${path}`);
    socket.addEventListener("open", () => {
      delay = FIRST_DELAY_MS;
      if (onOpen) onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (onMessage) onMessage(JSON.parse(event.data));
    });
    socket.addEventListener("close", (event) => {
      const retrying = reconnect && !stopped && !REFUSED.has(event.code);
      if (onClose) onClose(event.code, retrying);
      if (!retrying) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  };
  connect();
  return {
    send(payload) {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(payload));
    },
    close() {
      stopped = true;
      socket.close();
    },
  };
}

/** The elements of a server-rendered fragment (HTML the server sent), ready to insert. */
export function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

/** Read this page again from the server and swap in its elements with these ids. Returns the
 * fresh document (null if the server did not answer 200). */
export async function resyncFromPage(ids) {
  const response = await fetch(location.href, { credentials: "same-origin" });
  if (!response.ok) return null;
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of ids) {
    const fresh = page.getElementById(id);
    const current = document.getElementById(id);
    if (fresh && current) current.replaceWith(fresh);
  }
  return page;
}
