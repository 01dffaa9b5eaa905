/**
 * Remembered calls out of most writes (host/remembered.ts): once a state
 * record would hold CHECKPOINT_EVERY calls beyond the actor's checkpoint, the
 * stored calls are written to the checkpoint first, and the state record
 * holds only the calls since. Whatever the calls, a node loading the state
 * record, then the checkpoint it names, remembers exactly what the writer
 * remembers; a node that does not know checkpoints (or finds the checkpoint
 * missing) answers a resend of any call left to it OutcomeUnknown, never
 * runs it again; and records without a checkpoint load as before.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { createSuperjsonCodec } from '../../runtime/wire/codec.ts';
import { CHECKPOINT_EVERY, readCompact, RememberedCalls, type RememberedRecord } from '../../runtime/host/remembered.ts';

const test = suite('remembered calls: checkpoint');
const codec = createSuperjsonCodec();
const WINDOW = 600_000;
const STATE = { v: 1, value: {}, context: {} };

/** A store of two records, each with its revision, written as the actor host writes them. */
class Store {
  state: { bytes: Uint8Array; revision: number } | undefined;
  checkpoint: { bytes: Uint8Array; revision: number } | undefined;
  private seq = 0;
  checkpointWrites = 0;

  /** One batch: the checkpoint first when due (its revision read the first time), then the state record; then commit. */
  write(writer: RememberedCalls, now: number): RememberedRecord | undefined {
    let remembered = writer.toRecord(now);
    const due = writer.checkpointDue(remembered);
    if (due !== undefined) {
      if (due.revision === undefined) writer.learnCheckpointRevision(this.checkpoint?.revision ?? 0);
      else {
        assert.is(due.revision, this.checkpoint?.revision ?? 0, 'written over the revision it was read at');
        this.checkpoint = { bytes: writer.encodeCheckpoint(codec, due.calls), revision: ++this.seq };
        this.checkpointWrites++;
        remembered = writer.checkpointed(remembered!, due.calls, this.checkpoint.revision);
      }
    }
    this.state = { bytes: writer.encodeRecord(codec, STATE, remembered), revision: ++this.seq };
    writer.commit(remembered);
    return remembered;
  }

  /** A node loading the actor: the state record, then the checkpoint it names. */
  load(options: { windowMs: number; limit: number }): RememberedCalls {
    const reader = new RememberedCalls(options);
    const named = reader.load(this.stateRecord());
    if (named !== undefined) reader.loadCheckpoint(this.checkpoint && (codec.decode(this.checkpoint.bytes) as object), this.checkpoint?.revision ?? 0);
    return reader;
  }

  stateRecord(): Record<string, unknown> {
    return codec.decode(this.state!.bytes) as Record<string, unknown>;
  }
}

/** What a node remembers, without where it is kept. */
function remembers(calls: RememberedCalls, now: number): RememberedRecord | undefined {
  const r = calls.toRecord(now);
  return r && (r.ikf === undefined ? { ik: r.ik } : { ik: r.ik, ikf: r.ikf });
}

const key = fc.oneof(
  fc.stringMatching(/^[!-~]{1,12}$/),
  fc.integer({ min: 0, max: 400 }).map((n) => `AbCdEfGhIjKl${n.toString(36)}`),
);
const reply = fc.option(fc.oneof(fc.integer(), fc.string(), fc.constant(new Date(5))), { nil: undefined, freq: 4 });

test('a node loading the state record, then its checkpoint, remembers what the writer remembers', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.array(fc.tuple(key, reply), { minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max: 60 })), { minLength: 1, maxLength: 120 }),
      fc.integer({ min: 1, max: 80 }),
      (batches, limit) => {
        const options = { windowMs: 2000, limit };
        const store = new Store();
        const writer = new RememberedCalls(options);
        let now = 1_800_000_000_000;
        for (const [calls, step] of batches) {
          now += step;
          for (const [k, r] of calls) if (!writer.find(k)) writer.stage(k, r, now);
          if (!writer.hasStaged) continue;
          store.write(writer, now);
          const reader = store.load(options);
          assert.equal(remembers(reader, now), remembers(writer, now));
          // The state record holds fewer than CHECKPOINT_EVERY calls beyond the checkpoint, and a batch's.
          const own = store.stateRecord();
          const held = Array.isArray(own.ikc) ? readCompact(own.ikc).entries.length : (own.ik as unknown[]).length;
          assert.ok(held < CHECKPOINT_EVERY + 4, `${held} calls in the state record`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('a reader that does not know checkpoints, or finds it missing, answers a resend of a call left to it OutcomeUnknown', () => {
  const options = { windowMs: WINDOW, limit: 64 };
  const store = new Store();
  const writer = new RememberedCalls(options);
  let now = 1_800_000_000_000;
  for (let i = 1; i <= 40; i++) {
    writer.stage(`call-${i}`, i, ++now);
    store.write(writer, now);
  }
  assert.ok(store.checkpointWrites >= 1, 'a checkpoint was written');
  const record = store.stateRecord();
  assert.ok(Array.isArray(record.ikx), 'the state record names it');
  // Molt that knows `ikc` but not checkpoints: the state record alone.
  const without = new RememberedCalls(options);
  without.load({ ik: record.ik, ikf: record.ikf, ikc: record.ikc });
  // Molt before `ikc`: `ik` and `ikf` only.
  const oldest = new RememberedCalls(options);
  oldest.load({ ik: record.ik, ikf: record.ikf });
  // This Molt, the checkpoint gone (deleted by hand, say).
  const missing = new RememberedCalls(options);
  missing.load(record);
  assert.not.ok(missing.loadCheckpoint(undefined, 0));
  const full = store.load(options);
  for (let i = 1; i <= 40; i++) {
    assert.equal(full.find(`call-${i}`), { reply: i }, `call-${i} is remembered`);
    for (const [name, reader] of [['without checkpoints', without], ['before ikc', oldest], ['checkpoint missing', missing]] as const) {
      // Its first attempt was sent no later than it was applied (at base + i).
      if (reader.find(`call-${i}`) === undefined) assert.ok(reader.mayHaveForgotten(now - (1_800_000_000_000 + i), now), `${name}: a resend of call-${i} is not run again`);
      else assert.equal(reader.find(`call-${i}`), { reply: i });
    }
  }
});

test('the record\'s own floor covers every call left to the checkpoint, even one applied before the clock stepped back', () => {
  const options = { windowMs: WINDOW, limit: 64 };
  const store = new Store();
  const writer = new RememberedCalls(options);
  const base = 1_800_000_000_000;
  // call-3 is applied at base + 5000; then the wall clock steps back to base + 4.
  const times = Array.from({ length: 20 }, (_, i) => (i === 2 ? base + 5000 : base + i + 1));
  times.forEach((at, i) => {
    writer.stage(`call-${i + 1}`, i + 1, at);
    store.write(writer, at);
  });
  const record = store.stateRecord();
  assert.ok(Array.isArray(record.ikx), 'the state record names a checkpoint');
  const without = new RememberedCalls(options);
  without.load({ ikc: record.ikc });
  const now = base + 6000;
  assert.is(without.find('call-3'), undefined, 'left to the checkpoint');
  assert.ok(without.mayHaveForgotten(now - (base + 5000), now), 'a resend of call-3 is not run again');
});

test('a checkpoint older than the one named is not trusted; a later one (its state write lost) is', () => {
  const options = { windowMs: WINDOW, limit: 64 };
  const store = new Store();
  const writer = new RememberedCalls(options);
  let now = 1_800_000_000_000;
  for (let i = 1; i <= 20; i++) {
    writer.stage(`c${i}`, i, ++now);
    store.write(writer, now);
  }
  const named = (store.stateRecord().ikx as [number, unknown])[0];
  const older = new RememberedCalls(options);
  older.load(store.stateRecord());
  assert.not.ok(older.loadCheckpoint(codec.decode(store.checkpoint!.bytes) as object, named - 1));
  assert.is(older.find('c1'), undefined);
  assert.ok(older.mayHaveForgotten(now - (1_800_000_000_000 + 1), now));
  const later = new RememberedCalls(options);
  later.load(store.stateRecord());
  assert.ok(later.loadCheckpoint(codec.decode(store.checkpoint!.bytes) as object, named + 5));
  assert.equal(later.find('c1'), { reply: 1 });
});

test('records without a checkpoint (ik form, compact form) load as before and name none', () => {
  const options = { windowMs: 10 * WINDOW, limit: 64 };
  const oldForm = new RememberedCalls(options);
  assert.is(oldForm.load({ ik: [{ k: 'a', at: 1000, r: 1 }], ikf: 900 } as never), undefined);
  assert.equal(oldForm.find('a'), { reply: 1 });
  const compact = new RememberedCalls(options);
  assert.is(compact.load({ ikc: [900, [0, 'a', 1000, 1], [0, 'b', 5, 2]] }), undefined);
  assert.equal(compact.find('b'), { reply: 2 });
  assert.ok(compact.mayHaveForgotten(2000 - 900, 2000));
  // A malformed checkpoint name is ignored: the record's own calls and floor hold.
  const malformed = new RememberedCalls(options);
  assert.is(malformed.load({ ikc: [1000, [0, 'b', 1005, 2]], ikx: ['x', null] }), undefined);
  assert.equal(malformed.find('b'), { reply: 2 });
});

test('a record holds the same floors whether its writer knows its calls are in time order or reads every time', () => {
  // The writer takes the floors from the last calls while they are in time order, and reads every call once the
  // clock has stepped back; a fresh RememberedCalls knows nothing of the record and always reads every call.
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.array(key, { minLength: 1, maxLength: 3 }), fc.integer({ min: -40, max: 60 })), { minLength: 1, maxLength: 100 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 0, max: 8 }),
      (batches, limit, checkpointEvery) => {
        const options = { windowMs: 2000, limit, checkpointEvery };
        const writer = new RememberedCalls(options);
        let now = 10_000;
        let revision = 0;
        for (const [keys, step] of batches) {
          now += step;
          for (const k of keys) if (!writer.find(k)) writer.stage(k, 1, now);
          let remembered = writer.toRecord(now);
          const due = writer.checkpointDue(remembered);
          if (due !== undefined) {
            if (due.revision === undefined) writer.learnCheckpointRevision(revision);
            else remembered = writer.checkpointed(remembered!, due.calls, ++revision);
          }
          const written = writer.encodeRecord(codec, STATE, remembered);
          assert.equal(codec.decode(written), codec.decode(new RememberedCalls(options).encodeRecord(codec, STATE, remembered)));
          writer.commit(remembered);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test.run();
