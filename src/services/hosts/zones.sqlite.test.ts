import { runZonesSuite } from './zones.case.js';

runZonesSuite('sqlite');
