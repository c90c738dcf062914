/** Worker role: makes tentacle certificates (ECDSA P-256, as `tentacle new-certificate` does). */
import { generateCertificate, type CertificateIdentity } from '../../src/pki/certificate.js';

export const operations = {
  async generate({ count, prefix }: { count: number; prefix: string }): Promise<CertificateIdentity[]> {
    const identities: CertificateIdentity[] = [];
    for (let i = 0; i < count; i++) identities.push(await generateCertificate(`${prefix}-${i}`));
    return identities;
  },
};
