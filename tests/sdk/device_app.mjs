// An unmodified @mentra/sdk@2.1.29 app that reports what it knows of the
// user's glasses: `session.capabilities` when its session starts and
// whenever Sightline sends `capabilities_update`, and the fields of
// `session.device.state` as they change. Lines "SLTEST <json>" on stdout.
//
// Environment: PACKAGE, API_KEY, PORT.
import { AppServer } from "@mentra/sdk";

const report = (event, data = {}) =>
  process.stdout.write(`SLTEST ${JSON.stringify({ event, ...data })}\n`);

class DeviceApp extends AppServer {
  async onSession(session, sessionId, userId) {
    report("session", { sessionId, capabilities: session.capabilities });
    session.events.onCapabilitiesUpdate((update) =>
      report("capabilities", {
        modelName: update.modelName,
        capabilities: session.capabilities,
      }),
    );
    const state = session.device.state;
    for (const field of ["connected", "modelName", "batteryLevel", "charging", "wifiConnected"]) {
      state[field].onChange((value) => report("device_state", { field, value }));
    }
  }
}

const app = new DeviceApp({
  packageName: process.env.PACKAGE,
  apiKey: process.env.API_KEY,
  port: Number(process.env.PORT),
  healthCheck: true,
});
await app.start();
report("ready", { port: Number(process.env.PORT) });
