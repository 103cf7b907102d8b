// An unmodified @mentra/sdk@2.1.29 app with a webview page behind the SDK's
// auth middleware: GET /whoami answers {userId} with the user the
// middleware found (from aos_temp_token through the cloud's
// exchange-user-token, or from aos_signed_user_token verified offline with
// MENTRAOS_CLOUD_USER_TOKEN_PUBLIC_KEY), or null. When a session starts it
// fetches its settings from the cloud over the SDK's https URL and reports
// how that went. Lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT (and, for TLS, NODE_EXTRA_CA_CERTS).
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

class WebviewApp extends AppServer {
  async onSession(session, sessionId, userId) {
    report("session", { sessionId, userId, https: session.getHttpsServerUrl() });
    try {
      const settings = await session.settings.fetch();
      report("settings", { ok: true, settings });
    } catch (error) {
      report("settings", { ok: false, error: String(error?.message ?? error) });
    }
    // The URL the SDK's permission checks fetch on every subscribe.
    try {
      const url = `${session.getHttpsServerUrl()}/api/public/permissions/${encodeURIComponent(process.env.PACKAGE)}`;
      const answer = await fetch(url);
      report("permissions", { ok: answer.ok, body: await answer.json() });
    } catch (error) {
      report("permissions", { ok: false, error: String(error?.message ?? error) });
    }
  }
}

const app = new WebviewApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
app.getExpressApp().get("/whoami", (req, res) => {
  const userId = req.authUserId ?? null;
  report("whoami", { userId });
  res.json({ userId });
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
