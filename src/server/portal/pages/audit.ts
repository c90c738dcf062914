import { AuditQuery } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { AUDIT_FAMILIES, AUDIT_KIND_NAMES } from '../../audit/kinds.js';
import { auditFilterOf } from '../../audit/query.js';
import { parseStrings } from '../../http/validation.js';
import type { AuditEvent, AuditFilter } from '../../store/types.js';
import type { PageContext } from '../context.js';
import { detailsTable, time } from '../format.js';
import { html } from '../html.js';
import { layout, notice, sendPage } from '../layout.js';
import { signedIn } from './common.js';

const PAGE_SIZE = 50;
const FIELDS = ['actor', 'kind', 'since', 'until'] as const;

/** The audit log, newest first: filters by actor, kind or family and time, paged with ?before=. */
export async function auditPage(ctx: PageContext): Promise<void> {
  const given = Object.fromEntries(FIELDS.map((f) => [f, ctx.url.searchParams.get(f)?.trim() ?? '']));
  let events: AuditEvent[] = [];
  let problem: string | undefined;
  let filter: AuditFilter = {};
  try {
    const query = parseStrings(AuditQuery, (name) => ctx.url.searchParams.get(name) ?? undefined, 'query parameter');
    filter = auditFilterOf({ ...query, limit: PAGE_SIZE });
    events = await ctx.deps.store.listAuditEvents(filter);
  } catch (err) {
    // A filter that is not valid is the reader's to fix; anything else is the server's.
    if (!(err instanceof ReefError) || (err.code !== 'REEF_INVALID_REQUEST' && err.code !== 'REEF_INVALID_ARGUMENT')) throw err;
    problem = err.message;
  }
  const filters = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== ''));
  const older = events.length === PAGE_SIZE ? `/audit?${new URLSearchParams({ ...filters, before: String(events[events.length - 1]!.id) })}` : null;
  const party = (p: { kind: string; id: string | null; name: string | null } | null) =>
    p ? html`<span class="muted">${p.kind}</span> ${p.name ?? p.id ?? '—'}` : html`<span class="muted">—</span>`;

  const body = html`
    <h1>Audit log</h1>
    <p>Who changed what, when, and from which address, newest first. The log is append-only: nobody, not even an administrator, can change or delete an event through Reef.</p>
    <form class="filters" method="get" action="/audit">
      <label>Actor <input type="text" name="actor" value="${given.actor}" maxlength="200" placeholder="name or id"></label>
      <label>Kind
        <select name="kind">
          <option value="">Any kind</option>
          <optgroup label="Families">${AUDIT_FAMILIES.map((f) => html`<option value="${f}"${f === given.kind ? html` selected` : ''}>${f}.*</option>`)}</optgroup>
          <optgroup label="Kinds">${AUDIT_KIND_NAMES.map((k) => html`<option value="${k}"${k === given.kind ? html` selected` : ''}>${k}</option>`)}</optgroup>
        </select>
      </label>
      <label>Since <input type="text" name="since" value="${given.since}" placeholder="2026-12-01T09:00:00Z"></label>
      <label>Until <input type="text" name="until" value="${given.until}" placeholder="2026-12-02T00:00:00Z"></label>
      <button type="submit" class="button">Filter</button>
    </form>
    ${problem ? notice('error', problem) : ''}
    ${events.length === 0
      ? html`<p class="muted">${problem ? '' : 'No audit event matches.'}</p>`
      : html`<table class="table audit">
          <thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Actor</th><th scope="col">Target</th><th scope="col">Address</th><th scope="col">Node</th><th scope="col">Details</th></tr></thead>
          <tbody>${events.map((e) => html`<tr data-audit-id="${String(e.id)}">
            <td data-label="Time">${time(e.at)}</td>
            <th scope="row" data-label="Event"><code>${e.kind}</code></th>
            <td data-label="Actor">${party(e.actor)}</td>
            <td data-label="Target">${party(e.target)}</td>
            <td data-label="Address">${e.address ?? '—'}</td>
            <td data-label="Node">${e.node}</td>
            <td data-label="Details">${e.details ? detailsTable(e.details) : ''}</td>
          </tr>`)}</tbody>
        </table>`}
    ${older ? html`<p><a href="${older}">Older events ›</a></p>` : ''}
  `;
  sendPage(ctx.res, problem ? 400 : 200, layout({ title: 'Audit log', page: 'audit', nav: 'audit', user: signedIn(ctx), body }));
}
