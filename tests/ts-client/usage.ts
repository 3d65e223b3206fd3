// A portal's use of the generated client, checked by scripts/ts-client.sh: compiled with
// `tsc --strict` against the client generated from schema/, then run under Node (no chain:
// the chain calls are only type-checked; the decoding and digest checks run).
//
//   node dist/usage.js <schema dir>

import { createHash } from "crypto";
import { readFileSync } from "fs";
import * as path from "path";
import { MsgExecuteContractResponse } from "interchainjs/cosmwasm/wasm/v1/tx";
import { ExchangeClient, ExchangeQueryClient } from "./generated/Exchange.client";
import {
  AuditEntry,
  AuditOutcome,
  IncomingCursor,
  IncomingRequest,
  OutgoingRequest,
  RequestBody,
  RequestStatus,
} from "./generated/Exchange.types";
import { RetrievedReply } from "./generated/ExchangeData.types";

// ---- 1. PendingIncoming pages with a named cursor --------------------------------------

/** Every incoming request waiting for an answer, page by page. */
export async function allPendingIncoming(client: ExchangeQueryClient): Promise<IncomingRequest[]> {
  const all: IncomingRequest[] = [];
  let startAfter: IncomingCursor | undefined;
  for (;;) {
    const page = await client.pendingIncoming({ startAfter, limit: 100 });
    all.push(...page.requests);
    const last = page.requests.at(-1);
    if (!last || page.requests.length < 100) return all;
    startAfter = { partner_id: last.partner_id, request_id: last.body.request_id };
  }
}

export function oldCursorShapeIsATypeError(client: ExchangeQueryClient): void {
  // @ts-expect-error the (partner, request id) tuple is gone: the cursor is IncomingCursor
  void client.pendingIncoming({ startAfter: [["hospital-b", "req-0000000000000001"]] });
}

// ---- 2. RetrieveReply: the RetrievedReply in the transaction's response data -----------

/** The JSON schema published for it: its required fields are checked on decode. */
function requiredFields(schemaDir: string): string[] {
  const file = path.join(schemaDir, "exchange-data", "retrieved_reply.json");
  const schema = JSON.parse(readFileSync(file, "utf8")) as { title: string; required: string[] };
  if (schema.title !== "RetrievedReply") throw new Error(`${file} is not RetrievedReply's schema`);
  return schema.required;
}

/**
 * The contract's response data of `RetrieveReply` is JSON of RetrievedReply. In a JSON tx
 * result (REST `tx_response.msg_responses[i]`, `@type`
 * `/cosmwasm.wasm.v1.MsgExecuteContractResponse`) it is the base64 `data` field.
 */
export function decodeRetrievedReply(base64Data: string, required: string[]): RetrievedReply {
  const json: unknown = JSON.parse(Buffer.from(base64Data, "base64").toString("utf8"));
  if (typeof json !== "object" || json === null) throw new Error("RetrievedReply: not an object");
  const missing = required.filter((key) => !(key in json));
  if (missing.length) throw new Error(`RetrievedReply: missing ${missing.join(", ")}`);
  return json as RetrievedReply;
}

/** The same from a protobuf tx result (`msgResponses[i]`: typeUrl and bytes). */
export function decodeRetrievedReplyMsg(
  response: { typeUrl: string; value: Uint8Array },
  required: string[],
): RetrievedReply {
  if (response.typeUrl !== "/cosmwasm.wasm.v1.MsgExecuteContractResponse") {
    throw new Error(`not an execute response: ${response.typeUrl}`);
  }
  const { data } = MsgExecuteContractResponse.decode(response.value);
  return decodeRetrievedReply(Buffer.from(data).toString("base64"), required);
}

/** A portal retrieves: the client's own return type is `any`, so it decodes the data. */
export async function retrieve(
  client: ExchangeClient,
  requestId: string,
  required: string[],
): Promise<RetrievedReply> {
  const result: { msgResponses: { typeUrl: string; value: Uint8Array }[] } =
    await client.retrieveReply({ requestId });
  return decodeRetrievedReplyMsg(result.msgResponses[0], required);
}

// ---- 3. Enums and times -------------------------------------------------------------

function outcomeLabel(outcome: AuditOutcome): string {
  switch (outcome) {
    case "success":
      return "done";
    case "rejected":
      return "refused (see reason)";
    default: {
      const unknown: never = outcome;
      return unknown;
    }
  }
}

function statusIsFinal(status: RequestStatus): boolean {
  switch (status) {
    case "pending":
    case "receiving":
      return false;
    case "answered":
    case "rejected":
    case "timed_out":
    case "expired":
      return true;
    default: {
      const unknown: never = status;
      return unknown;
    }
  }
}

/** Both times of a request are unix seconds (numbers): they subtract. */
export function secondsLeft(request: OutgoingRequest): number {
  return request.expires_at - request.created_at;
}

export function auditLine(entry: AuditEntry): string {
  return `${entry.action}: ${outcomeLabel(entry.outcome)}${entry.reason ? ` (${entry.reason})` : ""}`;
}

// ---- 4. Signing bytes: the published test vectors -------------------------------------

interface Field {
  name: string;
  encoding: "text" | "bytes" | "u64" | "raw";
  value: string | number;
}
interface Vector {
  domain: string;
  inputs: unknown;
  fields: Field[];
  canonical_hex: string;
  sha256_hex: string;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
function lengthPrefixed(data: Buffer): Buffer {
  return Buffer.concat([u32(data.length), data]);
}

function encodeFields(fields: Field[]): Buffer {
  return Buffer.concat(
    fields.map((f) => {
      switch (f.encoding) {
        case "text":
          return lengthPrefixed(Buffer.from(String(f.value), "utf8"));
        case "bytes":
          return lengthPrefixed(Buffer.from(String(f.value), "hex"));
        case "u64":
          return u64(Number(f.value));
        case "raw":
          return Buffer.from(String(f.value), "hex");
      }
    }),
  );
}

/** `signing::request_sign_bytes`, from the typed request body as the chain carries it. */
export function requestSignBytes(b: RequestBody): Buffer {
  const text = (s: string) => lengthPrefixed(Buffer.from(s, "utf8"));
  const bytes = (base64: string) => lengthPrefixed(Buffer.from(base64, "base64"));
  return Buffer.concat([
    text("ehrx/request/v3"),
    u64(b.version),
    text(b.request_id),
    text(b.source_network),
    text(b.destination_network),
    text(b.requester),
    text(b.requester_role),
    text(b.clinician_id),
    text(b.purpose),
    bytes(b.sealed_patient),
    bytes(b.reply_encryption_key),
    u64(b.issued_at),
    u64(b.expires_at),
    // v3: the break-glass reason, an optional text (absent: the length 0xffffffff alone).
    b.break_glass ? text(b.break_glass.reason ?? "") : u32(0xffffffff),
  ]);
}

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

function checkVectors(schemaDir: string): number {
  const file = path.join(schemaDir, "test-vectors", "signing.json");
  const { vectors } = JSON.parse(readFileSync(file, "utf8")) as { vectors: Vector[] };
  for (const v of vectors) {
    const bytes = encodeFields(v.fields);
    if (bytes.toString("hex") !== v.canonical_hex) throw new Error(`${v.domain}: canonical bytes differ`);
    if (sha256(bytes) !== v.sha256_hex) throw new Error(`${v.domain}: digest differs`);
  }
  const request = vectors.find((v) => v.domain === "ehrx/request/v3");
  if (!request) throw new Error("no ehrx/request/v3 vector");
  const digest = sha256(requestSignBytes(request.inputs as RequestBody));
  if (digest !== request.sha256_hex) {
    throw new Error(`request digest ${digest} != published ${request.sha256_hex}`);
  }
  return vectors.length;
}

// ---- the run ------------------------------------------------------------------------

function main(): void {
  const schemaDir = process.argv[2];
  if (!schemaDir) throw new Error("usage: node dist/usage.js <schema dir>");
  const required = requiredFields(schemaDir);

  const reply: RetrievedReply = {
    request_id: "req-0000000000000001",
    responder: "wasm1resp",
    responder_network: "hospital-b",
    responder_pubkey: Buffer.alloc(33, 2).toString("base64"),
    recipient_key_hash: "72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793",
    manifest: { chunk_bytes: 1024, chunk_hashes: ["00".repeat(32)], history_hash: "ab".repeat(32) },
    issued_at: 1_700_000_100,
    signature: Buffer.alloc(64, 3).toString("base64"),
    channel_id: "channel-0",
    packet_sequence: 7,
  };
  const data = Buffer.from(JSON.stringify(reply), "utf8");
  const fromJson = decodeRetrievedReply(data.toString("base64"), required);
  const fromProto = decodeRetrievedReplyMsg(
    {
      typeUrl: "/cosmwasm.wasm.v1.MsgExecuteContractResponse",
      value: MsgExecuteContractResponse.encode({ data }).finish(),
    },
    required,
  );
  for (const decoded of [fromJson, fromProto]) {
    if (JSON.stringify(decoded) !== JSON.stringify(reply)) throw new Error("RetrievedReply did not round-trip");
  }
  let refused = false;
  try {
    decodeRetrievedReply(Buffer.from('{"request_id":"x"}').toString("base64"), required);
  } catch {
    refused = true;
  }
  if (!refused) throw new Error("an incomplete RetrievedReply was accepted");

  if (!statusIsFinal("expired") || statusIsFinal("pending")) throw new Error("status mapping");
  const count = checkVectors(schemaDir);
  console.log(`usage: RetrievedReply decoded (JSON and protobuf), ${count} signing vectors re-encoded and digests matched`);
}

main();
