import { describeCluster } from './cluster.js';

describeCluster('sharing');
