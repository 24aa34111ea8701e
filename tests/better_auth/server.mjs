// A minimal, real Better Auth server for the todo-api integration test (issue 4).
//
// Plain node:http, no framework. Email + password sign-up, the jwt() plugin, PostgreSQL through
// node-postgres. It creates its own tables (Better Auth's programmatic migrations) at start-up.
//
// Environment:
//   BA_DATABASE_URL     PostgreSQL URL of a database this server may create tables in (required)
//   BETTER_AUTH_SECRET  Better Auth's secret, >= 32 characters (required); in mode "hs256" it is
//                       also the HS256 key, shared with todo-api
//   BA_PORT             port to listen on, on 127.0.0.1 (required)
//   BA_MODE             "eddsa" (default): the jwt() plugin untouched, EdDSA keys, JWKS at
//                       /api/auth/jwks; "hs256": the plugin's jwt.sign hook makes HS256 tokens
//   BA_EXIT_ON_STDIN_EOF "1": exit when stdin closes (the test driver holds it open)
//
// Besides Better Auth's own routes under /api/auth/*, two test-only routes:
//   POST /test/rotate   rotates the signing key the way Better Auth's own rotation does: the
//                       current keys get an expiresAt in the past (so they are never used to sign
//                       again, but stay in the JWKS for the grace period) and a new key pair is
//                       created with the plugin's createJwk. Answers {"kid": "<new key id>"}.
//   GET  /test/ready    200 once the tables exist (the server only listens after that anyway).
import http from "node:http";
import { createHmac } from "node:crypto";
import pg from "pg";
import { betterAuth } from "better-auth";
import { jwt, createJwk } from "better-auth/plugins";
import { toNodeHandler } from "better-auth/node";
import { getMigrations } from "better-auth/db/migration";

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`better-auth server: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const databaseUrl = need("BA_DATABASE_URL");
const secret = need("BETTER_AUTH_SECRET");
const port = Number(need("BA_PORT"));
const mode = process.env.BA_MODE || "eddsa";
if (mode !== "eddsa" && mode !== "hs256") {
  console.error(`better-auth server: BA_MODE must be eddsa or hs256, not ${mode}`);
  process.exit(2);
}
const baseURL = `http://127.0.0.1:${port}`;

const b64url = (data) => Buffer.from(data).toString("base64url");

// HS256 with the shared secret, as todo-api's HS256 mode expects. The plugin hands the hook the
// full payload: sub (user id), iat, exp (15 min), iss and aud (both baseURL), plus the user fields.
function signHs256(payload) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const body = b64url(JSON.stringify(payload));
  const sig = createHmac("sha256", secret).update(`${header}.${body}`).digest("base64url");
  return `${header}.${body}.${sig}`;
}

const jwtOptions =
  mode === "eddsa"
    ? undefined // jwt() with no options: what an unmodified Better Auth does
    : {
        // jwt.sign requires jwks.remoteUrl (and keyPairConfig.alg, used only for the OpenID
        // metadata); with it the plugin's own /jwks route answers 404: there are no public keys.
        jwks: { remoteUrl: `${baseURL}/no-jwks-in-hs256-mode`, keyPairConfig: { alg: "EdDSA" } },
        jwt: { sign: async (payload) => signHs256(payload) },
      };

const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
const jwtPlugin = jwt(jwtOptions);
const options = {
  database: pool,
  secret,
  baseURL,
  emailAndPassword: { enabled: true },
  plugins: [jwtPlugin],
  telemetry: { enabled: false },
};
const auth = betterAuth(options);

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

const authHandler = toNodeHandler(auth);

async function rotate() {
  await pool.query(
    `UPDATE jwks SET "expiresAt" = now() - interval '1 second'
      WHERE "expiresAt" IS NULL OR "expiresAt" > now()`,
  );
  const context = await auth.$context;
  const key = await createJwk({ context }, jwtPlugin.options);
  return key.id;
}

const server = http.createServer((req, res) => {
  const path = (req.url || "").split("?")[0];
  if (path.startsWith("/api/auth/")) return authHandler(req, res);
  const reply = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  if (path === "/test/ready" && req.method === "GET") return reply(200, { mode });
  if (path === "/test/rotate" && req.method === "POST") {
    if (mode !== "eddsa") return reply(409, { error: "no keys to rotate in hs256 mode" });
    rotate().then(
      (kid) => reply(200, { kid }),
      (err) => reply(500, { error: String(err && err.stack ? err.stack : err) }),
    );
    return;
  }
  reply(404, { error: "not found" });
});

server.listen(port, "127.0.0.1", () => {
  console.error(`better-auth server: mode ${mode}, listening on ${baseURL}`);
});

const stop = () => {
  server.close();
  pool.end().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
// The test driver holds our stdin open; when it goes away (even killed), so do we.
if (process.env.BA_EXIT_ON_STDIN_EOF === "1") {
  process.stdin.on("end", stop);
  process.stdin.on("error", stop);
  process.stdin.resume();
}
