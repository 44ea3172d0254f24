// An independent implementation of the encryption format of Temporal's samples, in Node.js
// with OpenSSL through node:crypto and a hand-written protobuf Payload encoding, so that
// the Python codec is checked against something that shares none of its code.
//
// stdin:  {"op": "encrypt" | "decrypt", "key": base64, "keyId": str, "payload": {"metadata": {name: base64}, "data": base64}}
// stdout: the resulting payload, in the same JSON shape.
"use strict";
const crypto = require("node:crypto");

function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}

function field(tag, bytes) {
  return Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
}

function encodePayload(payload) {
  const parts = [];
  for (const name of Object.keys(payload.metadata).sort()) {
    const entry = Buffer.concat([field(0x0a, Buffer.from(name, "utf8")), field(0x12, payload.metadata[name])]);
    parts.push(field(0x0a, entry));
  }
  if (payload.data.length > 0) parts.push(field(0x12, payload.data));
  return Buffer.concat(parts);
}

function readVarint(buf, pos) {
  let value = 0, shift = 1;
  for (;;) {
    const byte = buf[pos++];
    value += (byte & 0x7f) * shift;
    if (byte < 0x80) return [value, pos];
    shift *= 128;
  }
}

function decodeFields(buf) {
  const fields = [];
  let pos = 0;
  while (pos < buf.length) {
    const tag = buf[pos++];
    let length;
    [length, pos] = readVarint(buf, pos);
    fields.push([tag, buf.subarray(pos, pos + length)]);
    pos += length;
  }
  return fields;
}

function decodePayload(buf) {
  const payload = { metadata: {}, data: Buffer.alloc(0) };
  for (const [tag, bytes] of decodeFields(buf)) {
    if (tag === 0x0a) {
      let name = "", value = Buffer.alloc(0);
      for (const [entryTag, entryBytes] of decodeFields(bytes)) {
        if (entryTag === 0x0a) name = entryBytes.toString("utf8");
        if (entryTag === 0x12) value = entryBytes;
      }
      payload.metadata[name] = value;
    } else if (tag === 0x12) {
      payload.data = bytes;
    }
  }
  return payload;
}

function fromJson(json) {
  const metadata = {};
  for (const [name, value] of Object.entries(json.metadata || {})) metadata[name] = Buffer.from(value, "base64");
  return { metadata, data: Buffer.from(json.data || "", "base64") };
}

function toJson(payload) {
  const metadata = {};
  for (const [name, value] of Object.entries(payload.metadata)) metadata[name] = value.toString("base64");
  return { metadata, data: payload.data.toString("base64") };
}

const request = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const key = Buffer.from(request.key, "base64");
const payload = fromJson(request.payload);
let result;
if (request.op === "encrypt") {
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv("aes-256-gcm", key, nonce);
  const sealed = Buffer.concat([cipher.update(encodePayload(payload)), cipher.final(), cipher.getAuthTag()]);
  result = {
    metadata: { "encoding": Buffer.from("binary/encrypted"), "encryption-key-id": Buffer.from(request.keyId) },
    data: Buffer.concat([nonce, sealed]),
  };
} else {
  if (payload.metadata["encryption-key-id"].toString() !== request.keyId) throw new Error("wrong key id");
  const nonce = payload.data.subarray(0, 12);
  const tag = payload.data.subarray(payload.data.length - 16);
  const decipher = crypto.createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAuthTag(tag);
  result = decodePayload(Buffer.concat([decipher.update(payload.data.subarray(12, payload.data.length - 16)), decipher.final()]));
}
process.stdout.write(JSON.stringify(toJson(result)));
