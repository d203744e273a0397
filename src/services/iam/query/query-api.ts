import type { FastifyInstance } from 'fastify';
import type { CredentialSource } from '../../../platform/auth/authenticate.js';
import type { IamService } from '../service.js';

/** AWS Query protocol (IAM 2010-05-08, STS 2011-06-15) on its own listener. */
export function registerQueryApi(app: FastifyInstance, deps: { service: 'iam' | 'sts'; iam: IamService; credentials: CredentialSource }) {
  void app;
  void deps;
}
