// A connect-node Eliza server over HTTP/2, called by tests/examples/test_interop_http2.py
// with connect-python's HTTP/2 client over gRPC, gRPC-Web and Connect.
//
//   node server.mjs [--tls-cert cert.pem --tls-key key.pem]
//
// It needs the descriptors in gen/ (`buf generate` here, after `npm ci`). It listens on a
// free port of 127.0.0.1 and prints one line, "listening on URL", once the socket is bound.
// It speaks HTTP/2 only: h2c with prior knowledge on plain TCP (http2.createServer), h2 by
// ALPN with TLS. It stops gracefully on SIGTERM or SIGINT, and when its stdin closes (the
// test went away).
//
// Eliza's replies are fixed, the same as the connect-go server's (tests/interop/go/server.go
// describes them): "eliza-peer: connect-node" on every response; "eliza-delay-ms" delays Say
// and Introduce; Say echoes ("You said: ...") and fails on a blank sentence with
// invalid_argument and a google.protobuf.StringValue detail; Introduce streams three
// sentences; Pontificate answers once with the trailer "eliza-heard"; Converse answers each
// sentence as it arrives and ends with the trailer "eliza-turns".

import * as fs from "node:fs";
import * as http2 from "node:http2";
import { parseArgs } from "node:util";

import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";

import { ElizaService } from "./gen/eliza/v1/eliza_pb.js";

const PEER = "connect-node";
const STOP_GRACE_MS = 5000;

// Waits for the eliza-delay-ms the client asked for, or until the call is aborted.
async function delay(ctx) {
  const raw = ctx.requestHeader.get("eliza-delay-ms");
  if (raw === null) {
    return;
  }
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0) {
    throw new ConnectError(`bad eliza-delay-ms ${JSON.stringify(raw)}`, Code.InvalidArgument);
  }
  await new Promise((resolve, reject) => {
    const abort = () => {
      clearTimeout(timer);
      reject(ConnectError.from(ctx.signal.reason));
    };
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener("abort", abort);
      resolve();
    }, ms);
    ctx.signal.addEventListener("abort", abort, { once: true });
  });
}

const eliza = {
  async say(req, ctx) {
    ctx.responseHeader.set("eliza-peer", PEER);
    await delay(ctx);
    if (req.sentence.trim() === "") {
      throw new ConnectError(
        "say something: the sentence is empty",
        Code.InvalidArgument,
        undefined,
        [{ desc: StringValueSchema, value: { value: "SayRequest.sentence" } }],
      );
    }
    return { sentence: `You said: ${req.sentence}` };
  },

  async *introduce(req, ctx) {
    ctx.responseHeader.set("eliza-peer", PEER);
    await delay(ctx);
    for (const sentence of [`Hello, ${req.name}.`, "I am Eliza.", "How do you do?"]) {
      yield { sentence };
    }
  },

  async pontificate(reqs, ctx) {
    ctx.responseHeader.set("eliza-peer", PEER);
    const heard = [];
    for await (const req of reqs) {
      heard.push(req.sentence);
    }
    ctx.responseTrailer.set("eliza-heard", String(heard.length));
    return { sentence: `I heard: ${heard.join(" | ")}` };
  },

  async *converse(reqs, ctx) {
    ctx.responseHeader.set("eliza-peer", PEER);
    let turns = 0;
    // Each reply is yielded as its request arrives: full duplex.
    for await (const req of reqs) {
      turns++;
      yield { sentence: `You said: ${req.sentence}` };
    }
    ctx.responseTrailer.set("eliza-turns", String(turns));
  },
};

const { values } = parseArgs({
  options: { "tls-cert": { type: "string" }, "tls-key": { type: "string" } },
});
if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
  console.error("server.mjs: --tls-cert and --tls-key go together");
  process.exit(2);
}
const tls = values["tls-cert"] !== undefined;

const handler = connectNodeAdapter({ routes: (router) => router.service(ElizaService, eliza) });
const server = tls
  ? http2.createSecureServer(
      {
        cert: fs.readFileSync(values["tls-cert"]),
        key: fs.readFileSync(values["tls-key"]),
        allowHTTP1: false,
      },
      handler,
    )
  : http2.createServer(handler);

const sessions = new Set();
server.on("session", (session) => {
  sessions.add(session);
  session.once("close", () => sessions.delete(session));
});

let stopping = false;
function stop() {
  if (stopping) {
    return;
  }
  stopping = true;
  // A clean stop: no new connections, GOAWAY on the open ones, which close once their
  // streams are done. A call still running after the grace period is a failure.
  const timer = setTimeout(() => {
    console.error(`server.mjs: ${sessions.size} connection(s) still open after the grace period`);
    process.exit(1);
  }, STOP_GRACE_MS);
  process.stdin.destroy(); // else reading it keeps the process alive
  server.close(() => clearTimeout(timer));
  for (const session of sessions) {
    session.close();
  }
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
process.stdin.on("end", stop);
process.stdin.resume();

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  console.log(`listening on ${tls ? "https" : "http"}://127.0.0.1:${port}`);
});
