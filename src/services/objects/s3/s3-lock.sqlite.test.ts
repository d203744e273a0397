import { runS3LockSuite } from './s3-lock.case.js';

runS3LockSuite('sqlite');
