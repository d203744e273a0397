import { it } from 'vitest';
import { PG_URL } from '../../test-support/pg.js';
import { runComputeApiSuite } from './compute-api.case.js';

if (PG_URL) runComputeApiSuite('postgres');
else it.skip('compute API on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
