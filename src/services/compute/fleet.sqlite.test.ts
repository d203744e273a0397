import { runFleetSuite } from './fleet.case.js';

runFleetSuite('sqlite');
