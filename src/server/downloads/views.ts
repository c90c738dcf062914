import { z } from 'zod';
import { formatBytes } from '../../format.js';
import { html, type SafeHtml } from '../portal/html.js';
import { layout, notice, type SignedIn } from '../portal/layout.js';
import { exampleFile, fetchCommand } from './commands.js';
import type { DownloadFile, DownloadsListing } from './folder.js';
import { DOWNLOADS_PATH, INDEX_JSON, SHA256SUMS } from './names.js';

/** The three forms of the index: a page for people, JSON and SHA256SUMS for machines. */

/** `GET /downloads/index.json` (its schema also describes it in the OpenAPI document). */
export const DownloadsIndex = z.object({
  files: z.array(
    z.object({
      name: z.string(),
      size: z.number().int(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      modified: z.string().datetime(),
      /** The file's path on this server, percent-encoded. */
      url: z.string(),
    }),
  ),
});
export type DownloadsIndex = z.infer<typeof DownloadsIndex>;

export function indexJson(listing: DownloadsListing): DownloadsIndex {
  return {
    files: listing.files.map((f) => ({ name: f.name, size: f.size, sha256: f.sha256, modified: f.modified.toISOString(), url: fileUrl(f.name) })),
  };
}

/** `sha256sum -c` format: digest, two spaces, name (names are plain ASCII, nothing to escape). */
export function sha256sums(listing: DownloadsListing): string {
  return listing.files.map((f) => `${f.sha256}  ${f.name}\n`).join('');
}

export function fileUrl(name: string): string {
  return `${DOWNLOADS_PATH}/${encodeURIComponent(name)}`;
}

export interface PageView {
  listing: DownloadsListing;
  /** `https://host[:port]` as the browser reached the server. */
  baseUrl: string;
  pin: string;
  /** Signed in to the portal: the page shows the navigation and where the folder is. */
  user?: SignedIn;
}

/** `GET /downloads/`: the files, their SHA-256, and the command that fetches one safely. */
export function downloadsPage(view: PageView): SafeHtml {
  const { listing, user } = view;
  const example = exampleFile(listing.files.map((f) => f.name));
  const body = html`
    <h1>Downloads</h1>
    <p>Tentacles and packages for machines to install from this server, which is often the only one they can reach. Anyone who can reach this port may download them; nothing here needs a key.</p>
    ${listing.files.length === 0 ? emptyNotice(listing, user) : filesTable(listing.files)}
    <h2>Fetch on a machine</h2>
    <p>This command checks the server's public key (its pin), so the file can come from this server only, with no certificate authority involved; <code>--insecure</code> only switches off the CA check that a self-signed certificate cannot pass, and curl still refuses any other key. Then <code>sha256sum</code> checks the file against the list. Add <code>-C -</code> before the file's URL to resume a broken download.</p>
    <div class="command">
      <pre><code id="fetch-command">${fetchCommand(view.baseUrl, view.pin, example ?? 'reef-tentacle-VERSION-linux-x64')}</code></pre>
      <button type="button" class="button small copy" data-copy="fetch-command" hidden>Copy</button>
      <span class="muted copy-status" role="status"></span>
    </div>
    <p>Public key pin of this server: <code class="thumbprint">${view.pin}</code></p>
    <p>For scripts: <a href="${DOWNLOADS_PATH}/${INDEX_JSON}">${INDEX_JSON}</a> and <a href="${DOWNLOADS_PATH}/${SHA256SUMS}">${SHA256SUMS}</a>.</p>
  `;
  return layout({ title: 'Downloads', page: 'downloads', nav: 'downloads', user, scripts: ['downloads.js'], body });
}

function filesTable(files: DownloadFile[]): SafeHtml {
  return html`<table class="table downloads">
      <thead><tr><th scope="col">Name</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
      <tbody>${files.map(
        (f) => html`<tr data-file="${f.name}">
        <th scope="row" data-label="Name"><a href="${fileUrl(f.name)}" download>${f.name}</a></th>
        <td data-label="Size" title="${f.size} bytes">${formatBytes(f.size)}</td>
        <td data-label="SHA-256"><code class="thumbprint">${f.sha256}</code></td>
      </tr>`,
      )}</tbody>
    </table>`;
}

function emptyNotice(listing: DownloadsListing, user: SignedIn | undefined): SafeHtml {
  // Where the folder is on the server is for its operators only.
  const where = user
    ? html` Put the Tentacle files (<code>reef-tentacle-&lt;version&gt;-linux-&lt;arch&gt;</code>, <code>.deb</code> packages) in <code>${listing.dir}</code>${listing.exists ? '' : ' (it does not exist yet)'}; they appear here without a restart.${listing.problem ? html` The server reports: ${listing.problem}.` : ''}`
    : '';
  return notice('info', html`This server holds no downloads yet.${where}`);
}
