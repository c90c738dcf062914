import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { thumbprintOfDer } from '../../src/pki/thumbprint.js';
import type { CertificateIdentity } from '../../src/pki/certificate.js';

const run = promisify(execFile);

/** A temporary folder where tests run the real `openssl` CLI; `remove()` it in `after`. */
export interface OpensslDir {
  dir: string;
  path(name: string): string;
  /** Runs the openssl CLI in the folder; returns stdout followed by stderr (where -info goes). */
  openssl(...args: string[]): Promise<string>;
  /** Whether `openssl ...args` succeeds (e.g. `pkcs12 -legacy` needs the legacy provider). */
  tryOpenssl(...args: string[]): Promise<boolean>;
  read(name: string): Promise<Buffer>;
  /** `openssl x509 -fingerprint -sha256` of a certificate file, as openssl prints it. */
  fingerprint(name: string, inform?: 'PEM' | 'DER'): Promise<string>;
  remove(): Promise<void>;
}

export async function opensslDir(): Promise<OpensslDir> {
  const dir = await mkdtemp(join(tmpdir(), 'reef-pki-'));
  const openssl = async (...args: string[]) => {
    const { stdout, stderr } = await run('openssl', args, { cwd: dir });
    return stdout + stderr;
  };
  return {
    dir,
    path: (name) => join(dir, name),
    openssl,
    tryOpenssl: (...args) => openssl(...args).then(() => true, () => false),
    read: (name) => readFile(join(dir, name)),
    fingerprint: async (name, inform = 'PEM') =>
      (await openssl('x509', '-in', name, '-inform', inform, '-noout', '-fingerprint', '-sha256')).trim(),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A self-signed certificate and its PKCS#8 key: `<name>.crt`, `<name>.key`. */
export async function selfSigned(o: OpensslDir, name: string, ...newkey: string[]): Promise<void> {
  await o.openssl('req', '-x509', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`,
    '-subj', `/CN=${name}`, '-days', '30');
}

export interface HandshakeResult {
  /** Thumbprint of the certificate the client saw from the server. */
  serverThumbprint: string;
  /** Thumbprint of the certificate the server saw from the client, when it presented one. */
  clientThumbprint?: string;
}

/** A real TLS handshake on 127.0.0.1, server (and optionally client) using the identities. */
export async function handshake(server: CertificateIdentity, client?: CertificateIdentity): Promise<HandshakeResult> {
  const tlsServer = createServer({
    key: server.keyPem,
    cert: server.certPem,
    requestCert: client !== undefined,
    rejectUnauthorized: false, // self-signed: the thumbprint is checked instead
  });
  const seenByServer = new Promise<TLSSocket>((resolve) => tlsServer.once('secureConnection', resolve));
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  const { port } = tlsServer.address() as AddressInfo;
  const socket = connect({
    host: '127.0.0.1',
    port,
    rejectUnauthorized: false,
    ...(client ? { key: client.keyPem, cert: client.certPem } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const serverSide = await seenByServer;
    const peerOfServer = serverSide.getPeerCertificate();
    const result: HandshakeResult = { serverThumbprint: thumbprintOfDer(socket.getPeerCertificate().raw) };
    if (peerOfServer.raw) result.clientThumbprint = thumbprintOfDer(peerOfServer.raw);
    serverSide.destroy();
    return result;
  } finally {
    socket.destroy();
    await new Promise((resolve) => tlsServer.close(resolve));
  }
}
