export { ServerMetrics } from './metrics.js';
export { timeStore, watchNode } from './watch.js';
export { createScrapeListener, METRICS_PATH, sendMetrics } from './http.js';
