import { runSqsApiSuite } from './sqs-api.case.js';

runSqsApiSuite('sqlite');
