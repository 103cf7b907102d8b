// An unmodified @mentra/sdk@2.1.29 app subscribed to translations, as the
// official LiveTranslation app is, used by Sightline's translation tests.
// It reports what the SDK hands its handlers as lines "SLTEST <json>".
//
// Environment: PACKAGE, API_KEY, PORT, and TRANSLATE: a comma-separated
// list of pairs "<src>-to-<tgt>" ("de-DE-to-en-US", "all-to-en-US").
// The first specific pair uses session.onTranslationForLanguage (the SDK
// keeps one handler of that kind: a second call replaces the first), the
// others the SDK's createTranslationStream, and "all-to-<tgt>" its
// createUniversalTranslationStream, with session.events.on.
import { AppServer, createTranslationStream, createUniversalTranslationStream } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

const pairs = (process.env.TRANSLATE ?? "").split(",").filter(Boolean);

class TranslationApp extends AppServer {
  async onSession(session, sessionId, userId) {
    report("session", { sessionId, userId });
    let first = true;
    for (const pair of pairs) {
      const [source, target] = pair.split("-to-");
      const handler = (data) => report("translation", { pair, data });
      if (source === "all") {
        session.events.on(createUniversalTranslationStream(target), handler);
      } else if (first) {
        first = false;
        session.onTranslationForLanguage(source, target, handler);
      } else {
        session.events.on(createTranslationStream(source, target), handler);
      }
    }
    session.events.onError((error) => report("error", { message: String(error?.message ?? error) }));
  }
}

const app = new TranslationApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
