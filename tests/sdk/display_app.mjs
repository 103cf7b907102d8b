// An unmodified @mentra/sdk@2.1.29 app that puts text on the glasses when
// told to, used by Sightline's display end-to-end test. Several of these
// compete for one screen.
//
// Environment: PACKAGE, API_KEY, PORT; ON_SESSION (JSON list of displays to
// show as soon as the session starts, may be empty).
// A display is {"text": "...", "durationMs": n?}. A button press whose
// buttonId is JSON {"to": PACKAGE, "show": [displays]} shows those
// displays back to back; presses for other packages are ignored.
// Reports "SLTEST <json>" lines on stdout.
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

const show = (session, displays) => {
  for (const d of displays) {
    const options = d.durationMs === undefined ? {} : { durationMs: d.durationMs };
    session.layouts.showTextWall(d.text, options);
    report("shown", { text: d.text });
  }
};

class DisplayApp extends AppServer {
  async onSession(session, sessionId) {
    report("session", { sessionId });
    session.events.onButtonPress((data) => {
      let command;
      try {
        command = JSON.parse(data.buttonId);
      } catch {
        return;
      }
      if (command.to === process.env.PACKAGE) show(session, command.show ?? []);
    });
    show(session, JSON.parse(process.env.ON_SESSION || "[]"));
  }
}

const app = new DisplayApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
