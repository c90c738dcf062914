/** kill -9 of the server, end to end: see crashes.ts. */
import { crashTests } from './crashes.js';

crashTests('server');
