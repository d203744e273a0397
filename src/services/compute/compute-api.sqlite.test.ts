import { runComputeApiSuite } from './compute-api.case.js';

runComputeApiSuite('sqlite');
