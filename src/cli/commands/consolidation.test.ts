import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFakeDriver } from '../../agent/drivers/fake/fake-driver.js';
import type { ConsolidationReportView } from '../../services/compute/consolidation-service.js';
import { cliAgainst } from '../../test-support/cli.js';
import { startTestControlPlane, type TestControlPlane } from '../../test-support/control-plane.js';

describe('yunhai consolidation and zone', () => {
  let cp: TestControlPlane;
  let cli: ReturnType<typeof cliAgainst>;
  const yh = (...argv: string[]) => cli.yh(...argv);

  beforeAll(async () => {
    cp = await startTestControlPlane({
      localAgent: {
        driver: createFakeDriver({ capabilities: { vcpus: 8, memoryMiB: 4096, diskGiB: 100 } }),
        name: 'h1',
      },
    });
    await cp.agent();
    cli = cliAgainst(cp, 'yunhai-cli-cons-');
  });
  afterAll(async () => {
    await cp?.stop();
    cli?.cleanup();
  });

  it('plans a dry run, lists and shows it', async () => {
    const run = await yh('consolidation', 'run', '--dry-run', '--max-migrations', '3', '-o', 'json');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const r = JSON.parse(run.stdout) as ConsolidationReportView;
    expect(r).toMatchObject({ status: 'planned', dryRun: true, options: { maxMigrations: 3 } });
    const listed = await yh('consolidation', 'list');
    expect(listed.stdout, listed.stderr).toContain(r.id);
    const shown = await yh('consolidation', 'show', r.id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/hosts on\s+1 → /);
    expect(shown.stdout).toMatch(/power\s+\d/);
  });

  it('refuses out-of-range limits before calling the API', async () => {
    const bad = await yh('consolidation', 'run', '--headroom-cpu', '2');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--headroom-cpu must be a number in 0..0.9');
  });

  it('filters migrations (the filters travel as query parameters)', async () => {
    const r = await yh('migration', 'list', '--state', 'completed', '--host', 'h1');
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('No migrations.');
  });

  it('lists availability zones with their hosts', async () => {
    const z = await yh('zone', 'list');
    expect(z.code).toBe(0);
    expect(z.stdout).toMatch(/default\s+1\/1 up/);
  });
});
