// Live status of a deployment page: one websocket, payloads replace the status badge.
const root = document.getElementById("deployment");
if (root) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  let delay = 1000;
  const connect = () => {
    const socket = new WebSocket(`${scheme}//${location.host}${root.dataset.ws}`);
    socket.addEventListener("open", () => { delay = 1000; });
    socket.addEventListener("message", (event) => {
      const payload = JSON.parse(event.data);
      if (payload.type !== "deployment.status") return;
      document.getElementById("status").innerHTML = payload.badge_html;
      document.getElementById("status-reason").textContent = payload.status_reason || "—";
    });
    socket.addEventListener("close", (event) => {
      if (event.code === 4401 || event.code === 4404) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  };
  connect();
}
