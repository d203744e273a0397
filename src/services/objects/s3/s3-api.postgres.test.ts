import { it } from 'vitest';
import { PG_URL } from '../../../test-support/pg.js';
import { runS3ApiSuite } from './s3-api.case.js';

if (PG_URL) runS3ApiSuite('postgres');
else it.skip('S3 API on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
