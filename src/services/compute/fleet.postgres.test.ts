import { it } from 'vitest';
import { PG_URL } from '../../test-support/pg.js';
import { runFleetSuite } from './fleet.case.js';

if (PG_URL) runFleetSuite('postgres');
else it.skip('fleet scheduling on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
