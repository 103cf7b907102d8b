// An unmodified @mentra/sdk@2.1.29 app that reports what
// `session.settings.get(key)` answers, used by Sightline's settings tests:
// when its session starts, after `session.settings.fetch()`, and after each
// settings change the cloud pushes.
//
// Environment: PACKAGE, API_KEY, PORT; KEYS (comma-separated setting keys).
// Reports "SLTEST <json>" lines on stdout; a value the SDK answers as
// undefined is reported as the string "<undefined>".
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

const keys = (process.env.KEYS || "").split(",").filter((k) => k.length > 0);

const values = (session) => {
  const out = {};
  for (const key of keys) {
    const value = session.settings.get(key);
    out[key] = value === undefined ? "<undefined>" : value;
  }
  return out;
};

class SettingsApp extends AppServer {
  async onSession(session, sessionId) {
    report("session", { sessionId, values: values(session) });
    session.settings.onChange(() => report("changed", { values: values(session) }));
    try {
      await session.settings.fetch();
      report("fetched", { values: values(session) });
    } catch (error) {
      report("fetch_failed", { error: String(error) });
    }
  }
}

const app = new SettingsApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
