/**
 * Type tests for the typed client (issue 2): a client bound to an interface
 * version can call exactly that version's messages, with exactly their
 * payloads, and gets typed replies. Each `@ts-expect-error` line must be a
 * compile error (tsc reports an unused directive otherwise), and every other
 * line must compile. Checked by `tsc --noEmit -p test/types/tsconfig.json`
 * (`node --import tsx test/run.ts types`). Nothing here runs.
 */
import { createClient, type ActorRef, type MoltClient } from '../../runtime/index.ts';
import { counterV1 } from '../fixtures/counter.ts';
import { counterV2 } from '../fixtures/versioned.ts';

/** Compiles only if `T` is exactly `U` (and neither is `any`). */
type Equal<T, U> = (<G>() => G extends T ? 1 : 2) extends <G>() => G extends U ? 1 : 2 ? true : false;
function expectType<T>(_value: T): void {}
function assertTrue<_T extends true>(): void {}

declare const client: MoltClient;

async function counterAtVersion1(): Promise<void> {
  const c = client.actor(counterV1, 'a');

  // Typed replies: asks resolve to their reply schema's type.
  const n: number = await c.get();
  const m: number = await c.increment({ by: 2 });
  expectType<number>(n + m);
  assertTrue<Equal<Awaited<ReturnType<typeof c.get>>, number>>();
  assertTrue<Equal<Awaited<ReturnType<typeof c.boom>>, number>>();
  // A tell resolves to nothing once it is accepted.
  const told: Promise<void> = c.reset();
  assertTrue<Equal<ReturnType<typeof c.reset>, Promise<void>>>();
  await told;
  // A message whose request has no required field may be called without one.
  await c.get({});
  await c.reset();

  // @ts-expect-error decrement is a message of counter@2, not of counter@1
  await c.decrement({ by: 1 });
  // @ts-expect-error no version of counter has this message
  await c.incremnt({ by: 1 });
  // @ts-expect-error `by` must be a number
  await c.increment({ by: '1' });
  // @ts-expect-error `by` is required
  await c.increment({});
  // @ts-expect-error increment takes a payload
  await c.increment();
  // @ts-expect-error the payload is an object, not a bare number
  await c.increment(1);
  // @ts-expect-error a field the schema does not declare
  await c.increment({ by: 1, step: 2 });
  // @ts-expect-error the reply of get is a number
  const s: string = await c.get();
  // @ts-expect-error a tell has no reply to use
  const r: number = await c.reset();
  // @ts-expect-error the reference is read-only: messages cannot be replaced
  c.get = async () => 1;
  void s;
  void r;
}

async function counterAtVersion2(): Promise<void> {
  // The same type at version 2 has decrement; the client speaks what it is bound to.
  const c = client.actor(counterV2, 'a');
  const n: number = await c.decrement({ by: 1 });
  expectType<number>(n);
  // @ts-expect-error reset was dropped in counter@2
  await c.reset();
  // @ts-expect-error boom was dropped in counter@2
  await c.boom();
  // @ts-expect-error decrement's `by` must be a number
  await c.decrement({ by: true });
}

async function references(): Promise<void> {
  // A reference's type is derived from the interface, not declared by the caller.
  const ref: ActorRef<typeof counterV1.messages> = client.actor(counterV1, 'a');
  // The interface alone (no machine) is enough to call.
  const viaInterface = client.actor(counterV1.interface, 'b');
  assertTrue<Equal<typeof viaInterface, typeof ref>>();
  // @ts-expect-error a counter@1 reference is not a counter@2 reference
  const wrong: ActorRef<typeof counterV2.messages> = ref;
  // @ts-expect-error actor keys are strings
  client.actor(counterV1, 42);
  // @ts-expect-error an interface is needed, not a type name
  client.actor('counter', 'a');
  // The untyped escape hatch for tools returns unknown, never any.
  const raw = await client.call('counter', 1, 'a', 'get');
  assertTrue<Equal<typeof raw, unknown>>();
  // @ts-expect-error an unknown reply must be narrowed before use
  const rawNumber: number = raw;
  void wrong;
  void rawNumber;
}

async function options(): Promise<void> {
  // @ts-expect-error the service name is required
  await createClient({ nats: { servers: 'nats://127.0.0.1:4222' } });
  // @ts-expect-error shards is a number
  await createClient({ service: 'counters', nats: { servers: 'nats://127.0.0.1:4222' }, shards: '64' });
}

export { counterAtVersion1, counterAtVersion2, references, options };
