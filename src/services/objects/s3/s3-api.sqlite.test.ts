import { runS3ApiSuite } from './s3-api.case.js';

runS3ApiSuite('sqlite');
