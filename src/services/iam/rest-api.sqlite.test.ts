import { runRestApiSuite } from './rest-api.case.js';

runRestApiSuite('sqlite');
