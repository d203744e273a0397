import { z } from 'zod';
import { type RouteDef, route } from './rest.js';

/**
 * `GET /api/v1/endpoints`: the URLs of every listener (api, iam, sts, s3, sqs), as in
 * `<data-dir>/endpoints.json`, so a client that knows only the API endpoint finds the others
 * (`yunhai bucket` takes the s3 one from here). Public: it names ports, not anything secret.
 */
export function endpointsRoute(endpoints: () => Record<string, string>): RouteDef {
  return route({
    method: 'GET',
    path: '/endpoints',
    operationId: 'getEndpoints',
    summary: 'The URL of each listener of this control plane (api, iam, sts, s3, sqs).',
    tag: 'platform',
    public: true,
    response: z.record(z.string(), z.string()),
    handler: async () => endpoints(),
  });
}
