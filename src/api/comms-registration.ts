import { z } from 'zod';
import { RegisterMachineRequest } from './contract.js';

/**
 * The argument of the one call of a registration over comms (`registration.register`,
 * docs/protocol.md section 9): the credentials the REST API takes in its headers, and the
 * body of POST /api/machines unchanged. Other ways to authenticate (a join token) are
 * further optional fields beside `apiKey`; unknown fields are refused, so a server that
 * does not know one says so rather than ignoring a credential.
 */
export const RegisterOverCommsArgs = z
  .object({
    apiKey: z.string().max(200).optional(),
    request: RegisterMachineRequest,
  })
  .strict();
export type RegisterOverCommsArgs = z.infer<typeof RegisterOverCommsArgs>;

/** What a Tentacle proves itself with on a registration over comms. */
export type RegistrationCredentials = Omit<RegisterOverCommsArgs, 'request'>;
