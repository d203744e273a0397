import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BodyHasher } from './checksums.js';
import { startHashJob } from './hash-offload.js';

describe('hashing on a worker thread', () => {
  it('answers the same MD5 and SHA-256 as hashing inline, whatever the chunking', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 12_345);
    const job = startHashJob({ sha256: true });
    for (let i = 0; i < data.length; ) {
      const n = 1 + ((i * 7919) % 100_000);
      const wait = job.update(data.subarray(i, i + n));
      if (wait) await wait;
      i += n;
    }
    const d = await job.digest();
    expect(d.md5.toString('hex')).toBe(createHash('md5').update(data).digest('hex'));
    expect(d.sha256?.toString('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('makes a fast producer wait once too much is on its way to the worker', async () => {
    const job = startHashJob({ sha256: false });
    const chunk = randomBytes(512 * 1024);
    let waited = 0;
    for (let i = 0; i < 32; i++) {
      const wait = job.update(chunk);
      if (wait) {
        waited++;
        await wait;
      }
    }
    expect(waited).toBeGreaterThan(0);
    const expected = createHash('md5');
    for (let i = 0; i < 32; i++) expected.update(chunk);
    expect((await job.digest()).md5.equals(expected.digest())).toBe(true);
  });

  it('runs concurrent jobs independently, and a dropped job does not disturb the others', async () => {
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(300_000 + i));
    const jobs = bodies.map(() => startHashJob({ sha256: false }));
    jobs[2]!.update(bodies[2]!);
    jobs[2]!.drop();
    const digests = await Promise.all(
      jobs.map(async (j, i) => {
        if (i === 2) return undefined;
        await j.update(bodies[i]!);
        return (await j.digest()).md5.toString('hex');
      }),
    );
    for (const [i, d] of digests.entries()) {
      if (i === 2) continue;
      expect(d).toBe(createHash('md5').update(bodies[i]!).digest('hex'));
    }
  });

  it('gives an offloaded BodyHasher the same digests and checksums as an inline one', async () => {
    const data = randomBytes(700_001);
    const a = new BodyHasher({ algorithms: ['CRC32', 'SHA256'], sha256: true });
    const b = new BodyHasher({ algorithms: ['CRC32', 'SHA256'], sha256: true, offload: true });
    for (let i = 0; i < data.length; i += 65_536) {
      a.update(data.subarray(i, i + 65_536));
      await b.update(data.subarray(i, i + 65_536));
    }
    expect(await b.finish()).toEqual(a.digest());
  });
});
