import { it } from 'vitest';
import { PG_URL } from '../../../test-support/pg.js';
import { runS3ConfigSuite } from './s3-config.case.js';

if (PG_URL) runS3ConfigSuite('postgres');
else it.skip('S3 bucket configuration on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
