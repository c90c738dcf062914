import { CertificateRotationView, StartCertificateRotationRequest } from '../../../api/contract.js';
import { ReefError } from '../../../errors.js';
import { auditRequest } from '../../audit/request.js';
import type { CertificateRotator } from '../../certificate-rotation.js';
import type { ApiContext } from '../context.js';
import { sendJson } from '../respond.js';
import { route, type ApiRoute } from '../route.js';
import { maker } from './tokens.js';

function rotator(ctx: ApiContext): CertificateRotator {
  const rotation = ctx.deps.rotation;
  if (!rotation) throw new ReefError('REEF_INVALID_ARGUMENT', 'This server cannot rotate its certificate (it runs without comms).');
  return rotation;
}

/** Server certificate rotation (src/server/certificate-rotation.ts; docs/operations.md). */
export const serverCertificateRoutes: ApiRoute[] = [
  route({
    method: 'GET',
    path: '/api/server/certificate-rotation',
    tag: 'Server',
    permission: 'server:certificate',
    summary: 'Show the server certificate rotation',
    description: 'The latest rotation, under way or completed: how many machines confirmed trusting the new thumbprint, and which have not (offline ones).',
    responses: { 200: { description: 'The latest rotation.', json: CertificateRotationView } },
    errors: { 409: 'No rotation was ever started (REEF_ROTATION_NOT_STARTED).' },
    handler: async (ctx) => sendJson(ctx.res, 200, await rotator(ctx).status()),
  }),
  route({
    method: 'POST',
    path: '/api/server/certificate-rotation',
    tag: 'Server',
    permission: 'server:certificate',
    summary: 'Start a server certificate rotation',
    description:
      'Makes the next server certificate and tells every connected Tentacle, over its pinned link, to trust its thumbprint too; Tentacles that connect later are told on connect. ' +
      'The server keeps presenting the current certificate until the rotation is completed.',
    body: { json: StartCertificateRotationRequest },
    responses: { 201: { description: 'The rotation just started.', json: CertificateRotationView } },
    errors: { 409: 'A rotation is under way already (REEF_ROTATION_IN_PROGRESS).' },
    handler: async (ctx, { body }) => {
      const graceMs = body.graceSeconds !== undefined ? body.graceSeconds * 1000 : undefined;
      const view = await rotator(ctx).begin(maker(ctx), graceMs);
      await auditRequest(ctx, {
        kind: 'server.certificate-rotation-started',
        details: { rotation: view.id, oldThumbprint: view.oldThumbprint, newThumbprint: view.newThumbprint, graceSeconds: view.graceSeconds },
      });
      sendJson(ctx.res, 201, view);
    },
  }),
  route({
    method: 'POST',
    path: '/api/server/certificate-rotation/complete',
    tag: 'Server',
    permission: 'server:certificate',
    summary: 'Complete the server certificate rotation',
    description:
      'Every node presents the new certificate from now on (also on the HTTPS port unless a CA certificate is configured there). ' +
      'Tentacles that do not trust it yet get the old one when they ask for it by thumbprint, and learn the new one; after the grace period Tentacles are told to drop the old thumbprint.',
    responses: { 200: { description: 'The completed rotation.', json: CertificateRotationView } },
    errors: { 409: 'No rotation is under way (REEF_ROTATION_NOT_STARTED).' },
    handler: async (ctx) => {
      const view = await rotator(ctx).complete(maker(ctx));
      await auditRequest(ctx, { kind: 'server.certificate-rotation-completed', details: { rotation: view.id, newThumbprint: view.newThumbprint } });
      sendJson(ctx.res, 200, view);
    },
  }),
];
