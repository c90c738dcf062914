/** kill -9 of the tentacle, end to end: see crashes.ts. */
import { crashTests } from './crashes.js';

crashTests('tentacle');
