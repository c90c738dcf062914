import { AuditEventView, AuditQuery, itemsOf } from '../../../api/contract.js';
import { auditFilterOf } from '../../audit/query.js';
import { sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';

export const auditRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/audit',
    tag: 'Audit',
    permission: 'audit:read',
    summary: 'Read the audit log',
    description:
      'Who changed what, when, from which address, newest first; for administrators. Pass the last `id` as `before` for the next page. ' +
      'The log is append-only: no route changes or deletes an event (docs/security.md).',
    query: AuditQuery,
    responses: { 200: { description: 'Events, newest first.', json: itemsOf(AuditEventView) } },
    handler: async (ctx, { query }) => {
      const events = await ctx.deps.store.listAuditEvents(auditFilterOf(query));
      sendJson(ctx.res, 200, { items: events satisfies AuditEventView[] });
    },
  }),
];
