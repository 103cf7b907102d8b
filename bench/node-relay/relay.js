// A Node.js WebSocket relay on the `ws` package, the transport the original
// MentraOS cloud ran on. Glasses connect to /glasses?user=<id>, apps to
// /app?user=<id>; every frame a user's glasses send is written as it is to
// each of that user's app sockets, with no session logic. Used by
// sightline-bench as a baseline.
//
// Usage: node relay.js <port>   (the `ws` package on NODE_PATH)
"use strict";
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 8090);
const users = new Map();

const appsOf = (id) => {
  let set = users.get(id);
  if (!set) {
    set = new Set();
    users.set(id, set);
  }
  return set;
};

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const url = new URL(req.url, "http://relay");
  const apps = appsOf(url.searchParams.get("user") || "");
  if (url.pathname.startsWith("/app")) {
    apps.add(ws);
    ws.on("close", () => apps.delete(ws));
  } else {
    ws.on("message", (data, isBinary) => {
      for (const app of apps) app.send(data, { binary: isBinary });
    });
  }
  ws.on("error", () => {});
});
wss.on("listening", () => process.stdout.write(`node relay listening on ${port}\n`));
