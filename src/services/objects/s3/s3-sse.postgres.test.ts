import { it } from 'vitest';
import { PG_URL } from '../../../test-support/pg.js';
import { runS3SseSuite } from './s3-sse.case.js';

if (PG_URL) runS3SseSuite('postgres');
else
  it.skip('S3 encryption, POST uploads and public access blocks on postgres (YUNHAI_TEST_PG_URL not set; run via npm test)', () => {});
