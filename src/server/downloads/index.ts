export { DownloadsFolder, type DownloadFile, type DownloadsListing, type OpenDownload } from './folder.js';
export { createDownloadsHandler, type DownloadsHandlerOptions } from './handler.js';
export { describeDownloads } from './listing.js';
export { fetchCommand, httpsBaseUrl } from './commands.js';
export { defaultDownloadsDir, DOWNLOADS_PATH } from './names.js';
