import { describe, expect, it } from "vitest";
import schema from "../api/schema.json";
import { SERVER_MESSAGE_FIELDS, parseServerMessage } from "./messages";

type Def = { required?: string[]; properties?: Record<string, { const?: string }> };
const defs = schema.$defs as unknown as Record<string, Def>;

describe("the server message table matches the backend schema", () => {
  const mapping = (schema.$defs.ServerMessage as unknown as { discriminator: { mapping: Record<string, string> } })
    .discriminator.mapping;

  it("knows exactly the server message types of quarry.protocol", () => {
    expect(Object.keys(SERVER_MESSAGE_FIELDS).sort()).toEqual(Object.keys(mapping).sort());
  });

  it.each(Object.entries(mapping))("checks every required field of %s", (type, ref) => {
    const def = defs[ref.replace("#/$defs/", "")] as Def;
    const required = (def.required ?? []).filter((f) => f !== "type").sort();
    expect(Object.keys(SERVER_MESSAGE_FIELDS[type as keyof typeof SERVER_MESSAGE_FIELDS]).sort()).toEqual(required);
  });
});

describe("parseServerMessage", () => {
  it("parses JSON text and objects", () => {
    const t = { type: "token", session_id: "s", message_id: "m", sequence: 3, text: "x" };
    expect(parseServerMessage(JSON.stringify(t))).toEqual(t);
    expect(parseServerMessage(t)).toEqual(t);
  });

  it("rejects junk", () => {
    expect(parseServerMessage("{")).toBeNull();
    expect(parseServerMessage("42")).toBeNull();
    expect(parseServerMessage({ type: "token", sequence: "3" })).toBeNull();
    expect(parseServerMessage({ type: "final", session_id: "s", message_id: "m", answer: 1 })).toBeNull();
    expect(parseServerMessage({ hello: "world" })).toBeNull();
  });

  it("normalises a missing optional field to null", () => {
    expect(parseServerMessage({ type: "error", code: "c", message: "m" })).toEqual({
      type: "error",
      code: "c",
      message: "m",
      session_id: null,
    });
    const ev = parseServerMessage({
      type: "document_status",
      workspace_id: "w",
      document_id: "d",
      name: "n",
      status: "processed",
      chunk_count: 2,
    });
    expect(ev).toMatchObject({ reason: null });
  });
});
