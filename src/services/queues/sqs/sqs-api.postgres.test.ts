import { it } from 'vitest';
import { PG_URL } from '../../../test-support/pg.js';
import { runSqsApiSuite } from './sqs-api.case.js';

if (PG_URL) runSqsApiSuite('postgres');
else it.skip('SQS API on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
