// The page under test: calls the Eliza example server on another origin with connect-web,
// over Connect (binary and JSON) and gRPC-Web, and publishes what happened in
// `window.elizaResults` (read by run.mjs) and as a table (for the screenshot).
//
// The server's base URL comes from the page's query: `index.html?server=http://127.0.0.1:PORT`.
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { ElizaService } from "../gen/eliza/v1/eliza_pb.js";

/** One scenario's outcome: `ok` and a human-readable `detail`, or the failure. */
interface Outcome {
  ok: boolean;
  detail: string;
  code?: string;
}

type Results = Record<string, Record<string, Outcome>>;

declare global {
  interface Window {
    elizaResults?: Results;
    elizaDone?: boolean;
  }
}

const server = new URLSearchParams(location.search).get("server") ?? "";

const transports: Record<string, Transport> = {
  "connect+proto": createConnectTransport({ baseUrl: server, useBinaryFormat: true }),
  "connect+json": createConnectTransport({ baseUrl: server, useBinaryFormat: false }),
  // Say has no side effects, so this transport sends it as a Connect GET request.
  "connect+proto+get": createConnectTransport({
    baseUrl: server,
    useBinaryFormat: true,
    useHttpGet: true,
  }),
  "grpc-web+proto": createGrpcWebTransport({ baseUrl: server, useBinaryFormat: true }),
};

function failure(err: unknown): Outcome {
  const e = ConnectError.from(err);
  return { ok: false, code: Code[e.code], detail: e.rawMessage };
}

async function say(transport: Transport): Promise<Outcome> {
  const client = createClient(ElizaService, transport);
  const requestId = `browser-${Math.random().toString(36).slice(2)}`;
  let headers = new Headers();
  const res = await client.say(
    { sentence: "I feel happy today" },
    { headers: { "x-request-id": requestId }, onHeader: (h) => (headers = h) },
  );
  const version = headers.get("eliza-version");
  const echoed = headers.get("x-request-id");
  const ok = res.sentence.length > 0 && version === "1966.1" && echoed === requestId;
  return {
    ok,
    detail: `reply=${JSON.stringify(res.sentence)} eliza-version=${version} x-request-id ${
      echoed === requestId ? "echoed" : `not echoed (${echoed})`
    }`,
  };
}

async function introduce(transport: Transport): Promise<Outcome> {
  const client = createClient(ElizaService, transport);
  const sentences: string[] = [];
  for await (const res of client.introduce({ name: "Browser" })) {
    sentences.push(res.sentence);
  }
  const ok = sentences.length === 5 && sentences[0] === "Hello Browser, I'm Eliza.";
  return { ok, detail: `${sentences.length} sentences: ${JSON.stringify(sentences[0])}...` };
}

async function errorDetails(transport: Transport): Promise<Outcome> {
  const client = createClient(ElizaService, transport);
  try {
    await client.say({ sentence: "" });
    return { ok: false, detail: "an empty sentence was accepted" };
  } catch (err) {
    const e = ConnectError.from(err);
    const details = e.findDetails(StringValueSchema).map((d) => d.value);
    const ok = e.code === Code.InvalidArgument && details[0] === "SayRequest.sentence";
    return {
      ok,
      code: Code[e.code],
      detail: `message=${JSON.stringify(e.rawMessage)} details=${JSON.stringify(details)}`,
    };
  }
}

async function timeout(transport: Transport): Promise<Outcome> {
  // The server pauses between sentences (--pause), so the whole introduction takes longer
  // than this deadline: a few sentences arrive, then the call ends with deadline_exceeded.
  const client = createClient(ElizaService, transport);
  const sentences: string[] = [];
  try {
    for await (const res of client.introduce({ name: "Hurry" }, { timeoutMs: 700 })) {
      sentences.push(res.sentence);
    }
    return { ok: false, detail: `finished with ${sentences.length} sentences before the deadline` };
  } catch (err) {
    const e = ConnectError.from(err);
    const ok = e.code === Code.DeadlineExceeded && sentences.length >= 1 && sentences.length < 5;
    return { ok, code: Code[e.code], detail: `${sentences.length} sentences, then ${e.rawMessage}` };
  }
}

const scenarios: Record<string, (t: Transport) => Promise<Outcome>> = {
  say,
  introduce,
  errorDetails,
  timeout,
};

function render(results: Results): void {
  const rows = Object.entries(results).flatMap(([transport, outcomes]) =>
    Object.entries(outcomes).map(
      ([name, o]) =>
        `<tr class="${o.ok ? "ok" : "fail"}"><td>${transport}</td><td>${name}</td>` +
        `<td>${o.ok ? "pass" : "FAIL"}</td><td>${o.code ?? ""}</td><td>${escape(o.detail)}</td></tr>`,
    ),
  );
  document.getElementById("results")!.innerHTML = rows.join("");
}

function escape(text: string): string {
  const div = document.createElement("div");
  div.textContent = text;
  return div.innerHTML;
}

async function main(): Promise<void> {
  document.getElementById("origin")!.textContent = `${location.origin} → ${server}`;
  const results: Results = {};
  for (const [transportName, transport] of Object.entries(transports)) {
    results[transportName] = {};
    for (const [name, run] of Object.entries(scenarios)) {
      try {
        results[transportName][name] = await run(transport);
      } catch (err) {
        results[transportName][name] = failure(err);
      }
      render(results);
    }
  }
  window.elizaResults = results;
  window.elizaDone = true;
}

void main();
