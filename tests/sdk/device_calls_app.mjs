// An unmodified @mentra/sdk@2.1.29 app whose device calls a test drives:
// POST /test/call {call, args, tag} makes one SDK call on the current
// session and reports how it settled, with what, and how fast. Stream
// statuses and location updates the app receives are reported too.
// Lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT.
import { createHash } from "node:crypto";
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

// What a settled call resolved with, made printable (photo bytes are
// reported by size and hash).
const printable = (value) => {
  if (value && Buffer.isBuffer(value.buffer)) {
    return {
      size: value.size,
      mimeType: value.mimeType,
      filename: value.filename,
      requestId: value.requestId,
      sha256: createHash("sha256").update(value.buffer).digest("hex"),
    };
  }
  return value ?? null;
};

const timed = async (tag, call) => {
  const started = Date.now();
  try {
    const value = await call();
    report(tag, { outcome: "resolved", value: printable(value), ms: Date.now() - started });
  } catch (error) {
    report(tag, { outcome: "rejected", error: String(error?.message ?? error), ms: Date.now() - started });
  }
};

let current = null;
let locationStop = null;

const calls = {
  photo: (s, a) => s.camera.requestPhoto(a),
  play: (s, a) => s.audio.playAudio(a),
  stopAudio: (s, a) => s.audio.stopAudio(a?.trackId),
  speak: (s, a) => s.audio.speak(a.text, a.options),
  location: (s, a) => s.location.getLatestLocation(a),
  subscribeLocation: async (s, a) => {
    locationStop = s.location.subscribeToStream(a, (update) => report("location_event", { update }));
    return "subscribed";
  },
  led: (s, a) => s.led.turnOn(a),
  wifi: async (s, a) => {
    s.requestWifiSetup(a?.reason);
    return "sent";
  },
  startStream: (s, a) => s.camera.startStream(a),
  stopStream: (s) => s.camera.stopStream(),
  checkStream: (s) => s.camera.checkExistingStream(),
  managed: (s, a) => s.camera.startManagedStream(a),
  capabilities: async (s) => s.capabilities,
};

class DeviceCallsApp extends AppServer {
  async onSession(session) {
    current = session;
    session.camera.onStreamStatus((status) => report("stream_status", { status }));
    session.events.onCapabilitiesUpdate?.((update) =>
      report("capabilities", { modelName: update.modelName, capabilities: update.capabilities }),
    );
    session.settings.onMentraosSettingChange("metricSystemEnabled", (value) =>
      report("mentraos_setting", { key: "metricSystemEnabled", value }),
    );
    session.events.onCustomMessage("greet", (payload) => report("custom_message", { payload }));
    report("session", { capabilities: session.capabilities });
  }
}

const app = new DeviceCallsApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
app.getExpressApp().post("/test/call", (req, res) => {
  const { call, args, tag } = req.body ?? {};
  if (!current || !calls[call]) {
    res.status(409).json({ ok: false, why: current ? `no call ${call}` : "no session yet" });
    return;
  }
  res.json({ ok: true });
  timed(tag ?? call, () => calls[call](current, args ?? {}));
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
