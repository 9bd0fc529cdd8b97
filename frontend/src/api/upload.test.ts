import { afterEach, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../test/server";
import { presignedFormData, uploadPresigned, type UploadProgress } from "./upload";

let server: TestServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

/** The part names of a multipart body, in order. */
function partNames(body: Buffer): string[] {
  return [...body.toString("latin1").matchAll(/Content-Disposition: form-data; name="([^"]+)"/g)].map((m) => m[1] as string);
}

describe("uploadPresigned (jsdom's real XMLHttpRequest against a real server)", () => {
  it("posts the signed fields first and the file last, with progress to 100 %", async () => {
    server = await startServer(() => ({ status: 204 }));
    const progress: UploadProgress[] = [];
    const file = new File(["x".repeat(50_000)], "notes.txt", { type: "text/plain" });
    const handle = uploadPresigned(
      { url: `${server.url}/bucket`, fields: { key: "uploads/w1/d1/notes.txt", policy: "p", "x-amz-signature": "sig" } },
      file,
      "notes.txt",
      { onProgress: (p) => progress.push(p) },
    );
    await handle.done;
    const req = server.requests[0];
    expect(req?.method).toBe("POST");
    expect(req?.headers.authorization).toBeUndefined();
    expect(req?.headers["content-type"]).toMatch(/^multipart\/form-data; boundary=/);
    expect(partNames(req?.body ?? Buffer.alloc(0))).toEqual(["key", "policy", "x-amz-signature", "file"]);
    expect(req?.body.toString()).toContain('filename="notes.txt"');
    expect(req?.body.toString()).toContain("x".repeat(50_000));
    expect(progress[progress.length - 1]).toEqual({ loaded: 50_000, total: 50_000 });
  });

  it("rejects with S3's reason when the storage refuses the file", async () => {
    server = await startServer(() => ({
      status: 400,
      headers: { "Content-Type": "application/xml" },
      body: "<Error><Code>EntityTooLarge</Code><Message>Your proposed upload exceeds the maximum allowed size</Message></Error>",
    }));
    const handle = uploadPresigned({ url: `${server.url}/bucket`, fields: {} }, new Blob(["abc"]), "a.bin");
    await expect(handle.done).rejects.toMatchObject({ status: 400, code: "EntityTooLarge" });
  });

  it("can be aborted, and says so", async () => {
    server = await startServer(() => ({ status: 204, delayMs: 5000 }));
    const handle = uploadPresigned({ url: `${server.url}/bucket`, fields: {} }, new Blob(["abc"]), "a.bin");
    handle.abort();
    await expect(handle.done).rejects.toMatchObject({ code: "aborted" });
  });

  it("gives up when nothing moves for the stall timeout", async () => {
    server = await startServer(() => ({ status: 204, delayMs: 5000 }));
    const handle = uploadPresigned({ url: `${server.url}/bucket`, fields: {} }, new Blob(["abc"]), "a.bin", {
      stallTimeoutMs: 200,
    });
    await expect(handle.done).rejects.toMatchObject({ code: "timeout" });
  });

  it("presignedFormData skips absent fields", () => {
    const form = presignedFormData({ url: "/", fields: { a: "1", b: undefined } }, new Blob(["z"]), "z.txt");
    expect([...form.keys()]).toEqual(["a", "file"]);
  });
});
