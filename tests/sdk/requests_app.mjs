// An unmodified @mentra/sdk@2.1.29 app that makes the device requests
// Sightline cannot carry out yet and reports how each settles, and how
// fast: playAudio(), an RTMP stream started twice, a managed stream.
// Lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT.
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

const timed = async (name, call) => {
  const started = Date.now();
  try {
    const value = await call();
    report(name, { outcome: "resolved", value: value ?? null, ms: Date.now() - started });
  } catch (error) {
    report(name, { outcome: "rejected", error: String(error?.message ?? error), ms: Date.now() - started });
  }
};

class RequestsApp extends AppServer {
  async onSession(session) {
    report("session");
    await timed("audio", () => session.audio.playAudio({ audioUrl: "http://127.0.0.1:9/a.mp3" }));
    const status = new Promise((resolve) => session.camera.onStreamStatus(resolve));
    await timed("stream", () => session.camera.startStream({ rtmpUrl: "rtmp://127.0.0.1:9/live" }));
    const first = await status;
    report("stream_status", { status: first.status });
    // The refusal cleared "already streaming": a second start is sent.
    await timed("stream_again", () => session.camera.startStream({ rtmpUrl: "rtmp://127.0.0.1:9/live" }));
    await timed("managed", () => session.camera.startManagedStream());
  }
}

const app = new RequestsApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
