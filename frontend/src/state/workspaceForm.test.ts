import { describe, expect, it } from "vitest";
import schema from "../api/schema.json";
import { defaultWorkspaceForm, validateWorkspaceForm } from "./workspaceForm";

const valid = { ...defaultWorkspaceForm, name: "Handbook" };

describe("validateWorkspaceForm", () => {
  it("builds the request body with the backend defaults", () => {
    const { body, errors } = validateWorkspaceForm(valid);
    expect(errors).toEqual({});
    const props = schema.$defs.WorkspaceIn.properties;
    expect(body).toEqual({
      name: "Handbook",
      embedding_model: null,
      chunk_size: props.chunk_size.default,
      chunk_overlap: props.chunk_overlap.default,
      hybrid: props.hybrid.default,
      reranker: null,
    });
  });

  it("requires a name", () => {
    expect(validateWorkspaceForm({ ...valid, name: "  " }).errors.name).toBeDefined();
  });

  it("bounds chunk size and overlap by the schema's limits", () => {
    const { minimum, maximum } = schema.$defs.WorkspaceIn.properties.chunk_size;
    expect(validateWorkspaceForm({ ...valid, chunkSize: String(minimum - 1) }).errors.chunkSize).toMatch(String(maximum));
    expect(validateWorkspaceForm({ ...valid, chunkSize: String(maximum + 1) }).errors.chunkSize).toBeDefined();
    expect(validateWorkspaceForm({ ...valid, chunkSize: "12.5" }).errors.chunkSize).toMatch(/whole number/);
    expect(validateWorkspaceForm({ ...valid, chunkOverlap: "-1" }).errors.chunkOverlap).toBeDefined();
  });

  it("refuses an overlap that is not smaller than the chunk size", () => {
    const r = validateWorkspaceForm({ ...valid, chunkSize: "64", chunkOverlap: "64" });
    expect(r.body).toBeNull();
    expect(r.errors.chunkOverlap).toMatch(/smaller than the chunk size/);
  });
});
