import { it } from 'vitest';
import { PG_URL } from '../../test-support/pg.js';
import { runRestApiSuite } from './rest-api.case.js';

if (PG_URL) runRestApiSuite('postgres');
else it.skip('REST API on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
