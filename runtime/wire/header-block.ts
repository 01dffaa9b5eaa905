/**
 * Reading a received message's header block without nats.js's header map.
 *
 * `msg.headers` in nats.js decodes the whole block into a map, validating and
 * canonicalising every key, and each `get` then copies and filters the key
 * list: about 3 µs for the three headers a node reads from a call — more than
 * the raw NATS responder spends on the whole call. Molt reads a few known
 * entries once per message, so it scans the block's text for them instead.
 *
 * For a block nats.js can decode, every value read here is the one
 * `msg.headers.get(name)` returns (exact key match, first occurrence, trimmed;
 * `test/unit/header-block.test.ts` checks it against nats.js on random
 * blocks). A block nats.js would refuse with an exception is read leniently.
 *
 * @module
 */
import type { Msg } from '@nats-io/transport-node';
import { rawHeaderBytes } from '../nats/internals.ts';

/** The decoded text of a received message's header block. */
export class HeaderBlock {
  private constructor(private readonly text: string) {}

  /** The message's header block, or undefined if it has none. */
  static of(msg: Msg): HeaderBlock | undefined {
    const text = headerText(msg);
    return text === undefined ? undefined : new HeaderBlock(text);
  }

  /** Parses header block bytes (`NATS/1.0[ code description]\r\nKey: value\r\n…\r\n\r\n`). */
  static fromBytes(bytes: Uint8Array): HeaderBlock {
    return new HeaderBlock(decoder.decode(bytes));
  }

  /** The first value of entry `name` (exact, case-sensitive key), trimmed; undefined if absent. */
  get(name: string): string | undefined {
    const at = this.text.indexOf(`\r\n${name}:`);
    if (at < 0) return undefined;
    const start = at + name.length + 3;
    const end = this.text.indexOf('\r\n', start);
    return this.text.slice(start, end < 0 ? undefined : end).trim();
  }

  /** The status code of the status line (`NATS/1.0 503` → 503), 0 if it has none. */
  get code(): number {
    // Most blocks (every call, every reply of a node) have a bare status line.
    if (this.text.startsWith('NATS/1.0\r\n')) return 0;
    const firstLine = this.text.slice(0, Math.max(0, this.text.indexOf('\r\n')));
    const match = /^NATS\/1\.0\s+(\d+)/.exec(firstLine);
    return match ? Number(match[1]) : 0;
  }
}

const decoder = new TextDecoder();

function headerText(msg: Msg): string | undefined {
  const raw = rawHeaderBytes(msg);
  if (raw !== 'unknown') return raw === undefined ? undefined : decoder.decode(raw);
  // Another Msg implementation: go through its public header map.
  const parsed = msg.headers;
  return parsed ? parsed.toString() : undefined;
}
