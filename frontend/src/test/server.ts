/** A real HTTP server on 127.0.0.1 for tests of the API client and the uploader. */
import { type IncomingMessage, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Wait this long before answering (for timeouts). */
  delayMs?: number;
}

export interface TestServer {
  url: string;
  requests: Recorded[];
  close: () => Promise<void>;
}

const CORS = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "*",
  "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
};

export async function startServer(handle: (req: Recorded) => Reply | Promise<Reply>): Promise<TestServer> {
  const requests: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "OPTIONS") {
        res.writeHead(204, CORS).end();
        return;
      }
      const rec: Recorded = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks) };
      requests.push(rec);
      const send = (reply: Reply) => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { ...CORS, ...reply.headers }).end(reply.body ?? "");
      };
      // A handler that throws answers 500 with its message, so the test sees it.
      new Promise<Reply>((resolve) => resolve(handle(rec))).then(
        (reply) => (reply.delayMs ? setTimeout(() => send(reply), reply.delayMs) : send(reply)),
        (e: unknown) => send({ status: 500, body: `test server handler failed: ${String(e)}` }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export const json = (status: number, body: unknown): Reply => ({
  status,
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify(body),
});
