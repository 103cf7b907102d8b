// An unmodified @mentra/sdk@2.1.29 app serving several users, whose
// app-to-app calls a test drives: POST /test/call {user, call, args, tag}
// makes one call on that user's session and reports how it settled.
// Messages, presence and room updates each user's app receives are
// reported too. Lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT, CLOUD_URL (the REST base for
// discoverAppUsers).
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

const timed = async (tag, user, call) => {
  const started = Date.now();
  try {
    const value = await call();
    report(tag, { user, outcome: "resolved", value: value ?? null, ms: Date.now() - started });
  } catch (error) {
    report(tag, { user, outcome: "rejected", error: String(error?.message ?? error), ms: Date.now() - started });
  }
};

const sessions = new Map();

const calls = {
  broadcast: (s, a) => s.broadcastToAppUsers(a.payload),
  direct: (s, a) => s.sendDirectMessage(a.target, a.payload),
  discover: (s, a) => s.discoverAppUsers(process.env.CLOUD_URL, a.includeProfiles ?? false),
  join: (s, a) => s.joinAppRoom(a.roomId, a.roomConfig),
  leave: (s, a) => s.leaveAppRoom(a.roomId),
  flood: async (s, a) => {
    for (let i = 0; i < a.count; i++) await s.broadcastToAppUsers({ n: i });
    return a.count;
  },
};

class MessagingApp extends AppServer {
  async onSession(session, sessionId, userId) {
    sessions.set(userId, session);
    session.onAppMessage((m) => report("message", { user: userId, message: m }));
    session.onAppUserJoined((m) => report("user_joined", { user: userId, message: m }));
    session.onAppUserLeft((m) => report("user_left", { user: userId, message: m }));
    session.onAppRoomUpdated((m) => report("room_updated", { user: userId, message: m }));
    session.events.onError((e) => report("error", { user: userId, error: String(e?.message ?? e) }));
    report("session", { user: userId });
  }
}

const app = new MessagingApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
app.getExpressApp().post("/test/call", (req, res) => {
  const { user, call, args, tag } = req.body ?? {};
  const session = sessions.get(user);
  if (!session || !calls[call]) {
    res.status(409).json({ ok: false, why: session ? `no call ${call}` : `no session of ${user}` });
    return;
  }
  res.json({ ok: true });
  timed(tag ?? call, user, () => calls[call](session, args ?? {}));
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
