/**
 * The batched form of calls (docs/protocol.md, "Batched calls"): a client
 * that knows which node owns a shard sends the calls it has for that node in
 * one tick as one message to the node's batch subject, and the node answers
 * them in as few messages as their completion allows. Every call in a batch
 * is exactly a call of the single form — its subject, its header block, its
 * body — plus a reply token that names it in the answer; the node runs each
 * one as it would run that single message.
 *
 * Both bodies are binary frames, integers big-endian:
 *
 *     batch  = count:u16, call{count}
 *     call   = subject:str16, token:str16, headers:bytes32, body:bytes32
 *     answer = count:u16, reply{count}
 *     reply  = token:str16, headers:bytes32, body:bytes32
 *     str16  = length:u16, ASCII bytes
 *     bytes32 = length:u32, bytes
 *
 * `headers` is a NATS header block (`NATS/1.0\r\n…\r\n\r\n`), the same bytes
 * the single form carries in the message's headers.
 *
 * @module
 */
import { ErrorCode, MoltError } from '../errors.ts';

/** The most calls one batch may carry. */
export const MAX_BATCH_CALLS = 1024;

/** Header on a batch and on its answers: the frame format's revision. */
export const BATCH_FORMAT = '1';

/** One call of a batch. */
export interface BatchedCall {
  /** The call's single-form subject (`molt.<service>.<type>.<shard>.<key>`). */
  readonly subject: string;
  /** Names the call in the answer (the client's reply subject of the single form). */
  readonly token: string;
  /** The header block of the single form. */
  readonly headers: Uint8Array;
  readonly body: Uint8Array;
}

/** One reply in an answer. */
export interface BatchedReply {
  readonly token: string;
  readonly headers: Uint8Array;
  readonly body: Uint8Array;
}

/** Bytes a call takes in a batch, beyond the batch's own two. */
export function batchedCallSize(subject: string, token: string, headers: Uint8Array, body: Uint8Array): number {
  return 2 + subject.length + 2 + token.length + 4 + headers.length + 4 + body.length;
}

/** Bytes a reply takes in an answer, beyond the answer's own two. */
export function batchedReplySize(token: string, headers: Uint8Array, body: Uint8Array): number {
  return 2 + token.length + 4 + headers.length + 4 + body.length;
}

class Writer {
  readonly bytes: Buffer;
  private at = 2;
  constructor(size: number, count: number) {
    this.bytes = Buffer.allocUnsafe(size);
    this.bytes.writeUInt16BE(count, 0);
  }
  str16(text: string): void {
    this.bytes.writeUInt16BE(text.length, this.at);
    this.at += 2;
    // Subjects and tokens are ASCII (checked by the sender's NATS client as subjects).
    this.at += this.bytes.write(text, this.at, 'latin1');
  }
  bytes32(value: Uint8Array): void {
    this.bytes.writeUInt32BE(value.length, this.at);
    this.at += 4;
    this.bytes.set(value, this.at);
    this.at += value.length;
  }
}

/** Encodes a batch of calls. */
export function encodeBatch(calls: readonly BatchedCall[]): Uint8Array {
  let size = 2;
  for (const c of calls) size += batchedCallSize(c.subject, c.token, c.headers, c.body);
  const w = new Writer(size, calls.length);
  for (const c of calls) {
    w.str16(c.subject);
    w.str16(c.token);
    w.bytes32(c.headers);
    w.bytes32(c.body);
  }
  return w.bytes;
}

/** Encodes an answer: replies to calls of one batch. */
export function encodeAnswer(replies: readonly BatchedReply[]): Uint8Array {
  let size = 2;
  for (const r of replies) size += batchedReplySize(r.token, r.headers, r.body);
  const w = new Writer(size, replies.length);
  for (const r of replies) {
    w.str16(r.token);
    w.bytes32(r.headers);
    w.bytes32(r.body);
  }
  return w.bytes;
}

class Reader {
  private at = 2;
  readonly count: number;
  constructor(private readonly bytes: Uint8Array, what: string) {
    if (bytes.length < 2) throw malformed(what, 'it is shorter than its count');
    this.count = (bytes[0]! << 8) | bytes[1]!;
  }
  private need(n: number, what: string): void {
    if (this.at + n > this.bytes.length) throw malformed(what, `it ends inside a frame (at byte ${this.at}, ${n} more needed)`);
  }
  str16(what: string): string {
    this.need(2, what);
    const length = (this.bytes[this.at]! << 8) | this.bytes[this.at + 1]!;
    this.at += 2;
    this.need(length, what);
    const text = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.at, length).toString('latin1');
    this.at += length;
    return text;
  }
  bytes32(what: string): Uint8Array {
    this.need(4, what);
    const length = ((this.bytes[this.at]! << 24) | (this.bytes[this.at + 1]! << 16) | (this.bytes[this.at + 2]! << 8) | this.bytes[this.at + 3]!) >>> 0;
    this.at += 4;
    this.need(length, what);
    const value = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return value;
  }
  end(what: string): void {
    if (this.at !== this.bytes.length) throw malformed(what, `${this.bytes.length - this.at} bytes follow its last frame`);
  }
}

function malformed(what: string, why: string): MoltError {
  return new MoltError(ErrorCode.InvalidHeader, `malformed ${what}: ${why} (see docs/protocol.md, "Batched calls")`);
}

/** Decodes a batch; throws `InvalidHeader` if it is malformed or carries more than {@link MAX_BATCH_CALLS}. */
export function decodeBatch(bytes: Uint8Array): BatchedCall[] {
  const r = new Reader(bytes, 'batch');
  if (r.count > MAX_BATCH_CALLS) throw malformed('batch', `it carries ${r.count} calls, more than ${MAX_BATCH_CALLS}`);
  const calls: BatchedCall[] = [];
  for (let i = 0; i < r.count; i++) calls.push({ subject: r.str16('batch'), token: r.str16('batch'), headers: r.bytes32('batch'), body: r.bytes32('batch') });
  r.end('batch');
  return calls;
}

/** Decodes an answer; throws `InvalidHeader` if it is malformed. */
export function decodeAnswer(bytes: Uint8Array): BatchedReply[] {
  const r = new Reader(bytes, 'batch answer');
  const replies: BatchedReply[] = [];
  for (let i = 0; i < r.count; i++) replies.push({ token: r.str16('batch answer'), headers: r.bytes32('batch answer'), body: r.bytes32('batch answer') });
  r.end('batch answer');
  return replies;
}
