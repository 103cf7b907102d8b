// A minimal glasses simulator for trying Sightline by hand.
//
//   node glasses.mjs ws://127.0.0.1:8002/glasses-ws <core token>
//
// Prints every message from the server. Type a command and press Enter:
//   start <package> | stop <package> | press | up | down | raw <json>
import WebSocket from "ws";
import readline from "node:readline";

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error("usage: node glasses.mjs <ws url of /glasses-ws> <core token>");
  process.exit(2);
}
const ws = new WebSocket(url, { headers: { Authorization: `Bearer ${token}` } });
const send = (msg) => ws.send(JSON.stringify({ ...msg, timestamp: new Date().toISOString() }));
ws.on("unexpected-response", (_req, res) => {
  let body = "";
  res.on("data", (c) => (body += c));
  res.on("end", () => {
    console.error(`refused: HTTP ${res.statusCode} ${body}`);
    process.exit(1);
  });
});
ws.on("open", () => {
  console.log("connected; commands: start <pkg>, stop <pkg>, press, up, down, raw <json>");
  setTimeout(() => send({ type: "connection_init" }), 1000);
  readline.createInterface({ input: process.stdin }).on("line", command);
});
ws.on("message", (data, isBinary) => console.log(isBinary ? `<audio ${data.length} bytes>` : `<- ${data}`));
ws.on("close", (code, reason) => {
  console.log(`closed ${code} ${reason}`);
  process.exit(0);
});
function command(line) {
  const [cmd, ...rest] = line.trim().split(/\s+/);
  const arg = rest.join(" ");
  if (cmd === "start") send({ type: "start_app", packageName: arg });
  else if (cmd === "stop") send({ type: "stop_app", packageName: arg });
  else if (cmd === "press") send({ type: "button_press", buttonId: "power", pressType: "short" });
  else if (cmd === "up" || cmd === "down") send({ type: "head_position", position: cmd });
  else if (cmd === "raw") ws.send(arg);
  else if (cmd) console.log("unknown command");
}
