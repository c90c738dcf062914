import { describeCluster } from './cluster.js';

describeCluster('failover');
