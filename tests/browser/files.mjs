// The project's files laid out as 8 magic bytes, a little-endian u32 length and a JSON header
// (a model file, a Lab file), edited as a deployment or a crafted file would change them.
import { createHash } from "node:crypto";

/// `bytes` with its JSON header changed by `edit`; what follows the header is left as it was.
export function withHeader(bytes, edit) {
  const len = bytes.readUInt32LE(8);
  const header = JSON.parse(bytes.subarray(12, 12 + len).toString());
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const start = Buffer.from(bytes.subarray(0, 12));
  start.writeUInt32LE(json.length, 8);
  return Buffer.concat([start, json, bytes.subarray(12 + len)]);
}

/// A model file with its header changed by `edit` and its checksum (the last 32 bytes) made
/// whole again: what a new deployment, or a careful editor, would produce.
export function resealModel(bytes, edit) {
  const edited = withHeader(bytes, edit);
  const body = edited.subarray(0, edited.length - 32);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}
