import { it } from 'vitest';
import { PG_URL } from '../../../test-support/pg.js';
import { runS3LockSuite } from './s3-lock.case.js';

if (PG_URL) runS3LockSuite('postgres');
else it.skip('S3 object lock on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
