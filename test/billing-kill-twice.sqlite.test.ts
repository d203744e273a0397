import { runKillTwiceSuite } from '../src/services/billing/kill-twice.case.js';

runKillTwiceSuite('sqlite');
