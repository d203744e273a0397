import { runS3ConfigSuite } from './s3-config.case.js';

runS3ConfigSuite('sqlite');
