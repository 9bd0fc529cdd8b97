/**
 * The server's 422 messages name the field first: `metadata.rating: numbers must be finite`, or pydantic's
 * `schedule: Value error, ...; max_points: Input should be ...`. These read them back per field.
 */
export interface FieldError {
  /** The dotted path as the server wrote it (`metadata.rating`, `filter.$or[0].rating.gte`, `schedule`). */
  path: string;
  message: string;
}

const NAMED = /^\s*([A-Za-z_$][\w$]*(?:\[\d+\])*(?:\.[\w$]+(?:\[\d+\])*)*)\s*:\s*([\s\S]*)$/;

/** One part: pydantic's "Value error, " dropped, a model-level `body: field: ...` read as the field's. */
function part(text: string): FieldError[] {
  const m = NAMED.exec(text);
  if (!m) return [{ path: "", message: text.trim() }];
  const path = m[1] as string;
  let message = (m[2] as string).trim().replace(/^Value error, /, "");
  // A model-level error ("body: instructions: ..."), or a validator naming a deeper path ("filter: filter.rating: ..."):
  // the inner path is the one that says where.
  if (path === "body" || message.startsWith(`${path}.`) || message.startsWith(`${path}[`)) return fieldErrors(message);
  // A validator that repeats its field ("schedule: schedule: does not parse") says it once.
  if (message.startsWith(`${path}: `)) message = message.slice(path.length + 2);
  return [{ path, message }];
}

/** Each `path: message` part of a message; a part that names no field has the path "". */
export function fieldErrors(message: string): FieldError[] {
  return message
    .split(/;\s+(?=[A-Za-z_$][\w.$[\]]*\s*:)/)
    .flatMap(part)
    .filter((e) => e.message !== "");
}

/** The path's first segment (`metadata.rating` -> `metadata`, `max_points` -> `max_points`). */
export function topField(path: string): string {
  return path.split(/[.[]/)[0] ?? "";
}

/** The segment after `prefix.` (`metadata.rating`, "metadata" -> `rating`), or null. */
export function subField(path: string, prefix: string): string | null {
  if (!path.startsWith(`${prefix}.`)) return null;
  const rest = path.slice(prefix.length + 1);
  return rest.split(/[.[]/)[0] || null;
}
