import { it } from 'vitest';
import { runKillTwiceSuite } from '../src/services/billing/kill-twice.case.js';
import { PG_URL } from '../src/test-support/pg.js';

if (PG_URL) runKillTwiceSuite('postgres');
else it.skip('billing across two kills on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
