import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestContext } from '../../platform/policy/principal.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';
import type { QueueRef } from './service.js';

/**
 * Property tests of FIFO queues through QueueService (SQLite): whatever the sends, receivers see
 * each group in send order, never two in-flight batches of one group, and each deduplication key
 * (per queue or per group) at most once within the 5-minute window.
 */
describe('FIFO queues (property)', () => {
  let cp: TestControlPlane;
  let ctx: RequestContext;
  let n = 0;

  beforeAll(async () => {
    cp = await startTestControlPlane();
    ctx = await cp.iam.systemContext('fifo-property');
  });
  afterAll(async () => cp?.stop());

  const send = fc.record({
    group: fc.constantFrom('g1', 'g2', 'g3', 'g4'),
    dedup: fc.integer({ min: 0, max: 12 }),
  });

  it('delivers every group in send order, one in-flight batch per group, each deduplication key once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(send, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        fc.boolean(),
        fc.boolean(),
        async (sends, batch, perGroup, contentBased) => {
          const name = `prop-${n++}.fifo`;
          await cp.queues.createQueue(ctx, name, {
            FifoQueue: 'true',
            DeduplicationScope: perGroup ? 'messageGroup' : 'queue',
            ContentBasedDeduplication: String(contentBased),
          });
          const ref: QueueRef = { accountId: ctx.principal.accountId, name };
          // With content-based deduplication the body is the key; otherwise the explicit id is.
          const keyOf = (s: { group: string; dedup: number }) =>
            perGroup ? `${s.group}/${s.dedup}` : String(s.dedup);
          const expected = new Map<string, string[]>();
          const seen = new Set<string>();
          for (const [i, s] of sends.entries()) {
            const body = contentBased ? `k${s.dedup}` : `m${i}`;
            const [r] = await cp.queues.sendMessages(
              ctx,
              ref,
              [{ body, groupId: s.group, ...(contentBased ? {} : { dedupId: `k${s.dedup}` }) }],
              false,
            );
            expect(r && 'ok' in r).toBe(true);
            const key = keyOf(s);
            if (seen.has(key)) continue;
            seen.add(key);
            expected.set(s.group, [...(expected.get(s.group) ?? []), body]);
          }

          const got = new Map<string, string[]>();
          const inFlight = new Map<string, string>(); // group -> receipt of a held message
          let held: { group: string; handle: string }[] = [];
          for (let rounds = 0; rounds < 200; rounds++) {
            const msgs = await cp.queues.receiveMessages(ctx, ref, {
              maxMessages: batch,
              visibilityTimeout: 60,
            });
            for (const m of msgs) {
              const g = m.systemAttributes.MessageGroupId!;
              // A group already in flight must not be delivered again.
              expect(inFlight.has(g)).toBe(false);
              got.set(g, [...(got.get(g) ?? []), m.body]);
            }
            for (const m of msgs) {
              inFlight.set(m.systemAttributes.MessageGroupId!, m.receiptHandle);
              held.push({ group: m.systemAttributes.MessageGroupId!, handle: m.receiptHandle });
            }
            if (msgs.length === 0 && held.length === 0) break;
            // Every other round, acknowledge what is held so far.
            if (msgs.length === 0 || rounds % 2 === 1) {
              await cp.queues.deleteMessages(
                ctx,
                ref,
                held.map((h) => ({ receiptHandle: h.handle })),
                false,
              );
              held = [];
              inFlight.clear();
            }
          }
          expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected));
          await cp.queues.deleteQueue(ctx, ref);
        },
      ),
      { numRuns: 25 },
    );
    expect(n).toBeGreaterThanOrEqual(25);
  }, 120_000);
});
