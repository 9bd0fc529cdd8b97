import { ApiError, errorFromResponse, networkError } from "./errors";

export interface PresignedPost {
  url: string;
  fields: Record<string, string | undefined>;
}

export interface UploadProgress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  onProgress?: (p: UploadProgress) => void;
  /** Fails the upload when no byte has moved for this long. */
  stallTimeoutMs?: number;
  createXhr?: () => XMLHttpRequest;
}

export interface UploadHandle {
  done: Promise<void>;
  abort: () => void;
}

/** The multipart body of an S3 presigned POST: every signed field first, the file last as `file`. */
export function presignedFormData(target: PresignedPost, file: Blob, filename: string): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(target.fields)) if (v !== undefined) form.append(k, v);
  form.append("file", file, filename);
  return form;
}

/**
 * Uploads straight to the presigned URL with XMLHttpRequest (fetch cannot report upload progress).
 * No Authorization header: the signature is in the fields.
 */
export function uploadPresigned(
  target: PresignedPost,
  file: Blob,
  filename: string,
  opts: UploadOptions = {},
): UploadHandle {
  const xhr = opts.createXhr ? opts.createXhr() : new XMLHttpRequest();
  const stallMs = opts.stallTimeoutMs ?? 60_000;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stalled = false;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      xhr.abort();
    }, stallMs);
  };
  const done = new Promise<void>((resolve, reject) => {
    xhr.upload.addEventListener("progress", (e) => {
      arm();
      opts.onProgress?.({ loaded: e.loaded, total: e.lengthComputable ? e.total : file.size });
    });
    xhr.addEventListener("load", () => {
      clearTimeout(timer);
      if (xhr.status >= 200 && xhr.status < 300) {
        opts.onProgress?.({ loaded: file.size, total: file.size });
        resolve();
      } else {
        reject(errorFromResponse(xhr.status, xhr.statusText, String(xhr.responseText ?? "")));
      }
    });
    xhr.addEventListener("error", () => {
      clearTimeout(timer);
      reject(networkError(new Error("the upload failed")));
    });
    xhr.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(
        stalled
          ? new ApiError(0, "timeout", `The upload made no progress for ${Math.round(stallMs / 1000)} s.`)
          : new ApiError(0, "aborted", "The upload was cancelled."),
      );
    });
  });
  xhr.open("POST", target.url);
  arm();
  xhr.send(presignedFormData(target, file, filename));
  return { done, abort: () => xhr.abort() };
}
