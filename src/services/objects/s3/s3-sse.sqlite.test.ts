import { runS3SseSuite } from './s3-sse.case.js';

runS3SseSuite('sqlite');
