import { it } from 'vitest';
import { PG_URL } from '../../test-support/pg.js';
import { runZonesSuite } from './zones.case.js';

if (PG_URL) runZonesSuite('postgres');
else it.skip('availability zones API on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
