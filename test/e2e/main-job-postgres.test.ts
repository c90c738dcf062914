import { describeMainJob } from './main-job.js';

describeMainJob('postgres');
