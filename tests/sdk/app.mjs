// An unmodified @mentra/sdk@2.1.29 app, used by Sightline's conformance
// tests. It reports what the SDK does as lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT, HANDLERS=early|late.
import { AppServer } from "@mentra/sdk";
import WebSocket from "ws";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

// Count every tpa_connection_init the SDK sends: a reconnect shows up here.
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data, ...rest) {
  try {
    const msg = JSON.parse(typeof data === "string" ? data : data.toString());
    if (msg.type === "tpa_connection_init") report("init_sent", { sessionId: msg.sessionId });
    if (msg.type === "subscription_update") report("subscriptions_sent", { subscriptions: msg.subscriptions });
  } catch {
    // binary or non-JSON: not ours to report
  }
  return send.call(this, data, ...rest);
};

const late = process.env.HANDLERS === "late";

class ConformanceApp extends AppServer {
  async onSession(session, sessionId, userId) {
    report("session", { sessionId, userId, settings: session.settings.getAll?.() ?? null });
    const register = () => {
      session.events.onButtonPress((data) => {
        report("button_press", { data });
        session.layouts.showTextWall(`Pressed ${data.buttonId} (${data.pressType})`);
      });
      session.events.onHeadPosition((data) => report("head_position", { data }));
      session.events.onTranscription((data) => report("transcription", { data }));
    };
    if (late) {
      // Handlers arrive one by one after onSession returns: the cloud sees
      // [] first, then a growing list.
      setTimeout(() => {
        session.events.onButtonPress((data) => {
          report("button_press", { data });
          session.layouts.showTextWall(`Late ${data.buttonId}`);
        });
        setTimeout(() => session.events.onHeadPosition((data) => report("head_position", { data })), 200);
      }, 300);
    } else {
      register();
    }
    session.events.onDisconnected((info) => report("disconnected", { info }));
  }

  async onStop(sessionId, userId, reason) {
    report("stop", { sessionId, userId, reason });
    await super.onStop(sessionId, userId, reason);
  }
}

const app = new ConformanceApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
