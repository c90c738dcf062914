/**
 * nginx for tests: a given config body in a temp dir, run in the foreground on free ports
 * of 127.0.0.1. pid, access log and temp paths stay inside the temp dir, so it runs as root
 * without touching /var. `stream: true` loads ngx_stream_module (Debian's
 * libnginx-mod-stream) for `stream { ... }` bodies.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateCertificate } from '../../src/pki/certificate.js';
import { startDaemon, type Daemon } from './tinyproxy.js';

export const NGINX = '/usr/sbin/nginx';
const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

export interface NginxContext {
  /** Free ports on 127.0.0.1 for the body's `listen` lines. */
  ports: number[];
  /** The temp dir: where `files` were written. */
  dir: string;
  /** Directives to put inside `http { }`: temp paths and access log within `dir`. */
  httpPaths: string;
}

export interface NginxOptions {
  /** How many free ports to pick (default 1); nginx is ready once all accept connections. */
  ports?: number;
  /** Load ngx_stream_module. */
  stream?: boolean;
  /** Extra files for the temp dir (certificates, keys), by name. */
  files?: Record<string, string>;
  /** The config after the main-context preamble: `http { ... }` and/or `stream { ... }`. */
  config(ctx: NginxContext): string;
}

export function startNginx(options: NginxOptions): Promise<Daemon> {
  if (options.stream && !existsSync(STREAM_MODULE)) {
    throw new Error(`${STREAM_MODULE} is missing: apt-get install -y libnginx-mod-stream`);
  }
  return startDaemon({
    name: 'nginx',
    command: NGINX,
    ports: options.ports ?? 1,
    files: ({ dir, ports }) => {
      const httpPaths = [
        `access_log ${join(dir, 'access.log')};`,
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `${kind}_temp_path ${join(dir, `${kind}_temp`)};`),
      ].join('\n');
      const preamble = [
        ...(options.stream ? [`load_module ${STREAM_MODULE};`] : []),
        // As root, nginx would switch its workers to "nobody", who cannot read the temp dir.
        ...(process.getuid?.() === 0 ? ['user root;'] : []),
        'worker_processes 1;',
        `pid ${join(dir, 'nginx.pid')};`,
        'error_log stderr info;', // into Daemon.output()
        'events { worker_connections 256; }',
      ].join('\n');
      return { ...options.files, 'nginx.conf': `${preamble}\n${options.config({ ports, dir, httpPaths })}\n` };
    },
    // -e: where errors go before the config is read (else /var/log/nginx/error.log).
    args: ({ dir }) => ['-p', `${dir}/`, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', 'daemon off;'],
  });
}

export interface TerminatingNginx extends Daemon {
  /** The thumbprint of nginx's own certificate (not the server's). */
  thumbprint: string;
}

/**
 * nginx terminating TLS on 127.0.0.1 with its own, new certificate, as a corporate reverse
 * proxy would, and re-encrypting to `upstream` (a Reef server's HTTPS port): the WebSocket
 * path with the upgrade headers, and with `portal`, every other path as plain requests.
 */
export async function startTerminatingNginx(options: { upstream: string; websocketPath?: string; portal?: boolean }): Promise<TerminatingNginx> {
  const cert = await generateCertificate('nginx terminator');
  const daemon = await startNginx({
    files: { 'cert.pem': cert.certPem, 'key.pem': cert.keyPem },
    config: ({ ports, dir, httpPaths }) => `http {
  ${httpPaths}
  server {
    listen 127.0.0.1:${ports[0]} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
${options.portal ? `    location / {\n      proxy_pass ${options.upstream};\n    }\n` : ''}    location ${options.websocketPath ?? '/reef/comms'} {
      proxy_pass ${options.upstream};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}`,
  });
  return Object.assign(daemon, { thumbprint: cert.thumbprint });
}
