// An unmodified @mentra/sdk@2.1.29 app whose simple storage a test drives:
// POST /test/call {call, args, tag} makes one `session.simpleStorage` call
// on the latest session and reports how it settled and with what, as lines
// "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT.
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

let current = null;

const calls = {
  set: (s, a) => s.simpleStorage.set(a.key, a.value),
  setMultiple: (s, a) => s.simpleStorage.setMultiple(a.data),
  flush: (s) => s.simpleStorage.flush(),
  get: (s, a) => s.simpleStorage.get(a.key),
  getAll: (s) => s.simpleStorage.getAllData(),
  keys: (s) => s.simpleStorage.keys(),
  hasKey: (s, a) => s.simpleStorage.hasKey(a.key),
  delete: (s, a) => s.simpleStorage.delete(a.key),
  clear: (s) => s.simpleStorage.clear(),
  // Forgets the SDK's cached copy, so the next read asks the cloud.
  forget: async (s) => {
    s.simpleStorage.storage = null;
    return "forgotten";
  },
  baseUrl: async (s) => s.simpleStorage.baseUrl,
};

class StorageApp extends AppServer {
  async onSession(session, sessionId, userId) {
    current = session;
    report("session", { sessionId, userId });
  }
}

const app = new StorageApp({
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
  const started = Date.now();
  Promise.resolve()
    .then(() => calls[call](current, args ?? {}))
    .then(
      (value) => report(tag ?? call, { outcome: "resolved", value: value ?? null, ms: Date.now() - started }),
      (error) =>
        report(tag ?? call, { outcome: "rejected", error: String(error?.message ?? error), ms: Date.now() - started }),
    );
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
