import { it } from 'vitest';
import { PG_URL } from '../../test-support/pg.js';
import { runBillingSuite } from './billing.case.js';

if (PG_URL) runBillingSuite('postgres');
else it.skip('billing on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
