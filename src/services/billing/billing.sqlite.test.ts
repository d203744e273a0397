import { runBillingSuite } from './billing.case.js';

runBillingSuite('sqlite');
