import type { FastifyRequest } from 'fastify';
import type { AppService, MerchantPrincipal } from '../apps/app.service.js';
import { constantTimeEqual } from '../crypto/tokens.js';
import { AppError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    merchant: MerchantPrincipal | null;
  }
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** onRequest hook for the merchant API: resolves the API key to its app before anything is parsed. */
export function merchantAuth(apps: AppService) {
  return async (request: FastifyRequest): Promise<void> => {
    const token = bearerToken(request);
    if (token === undefined)
      throw new AppError('unauthorized', 'a valid API key is required (Authorization: Bearer sk_…)');
    request.merchant = await apps.authenticate(token);
  };
}

/** The merchant behind a request that passed `merchantAuth`. */
export function principalOf(request: FastifyRequest): MerchantPrincipal {
  if (!request.merchant)
    throw new AppError('unauthorized', 'a valid API key is required (Authorization: Bearer sk_…)');
  return request.merchant;
}

/** onRequest hook for the admin API. Without a configured token the admin API refuses everyone. */
export function adminAuth(adminToken: string | undefined) {
  return async (request: FastifyRequest): Promise<void> => {
    if (adminToken === undefined) {
      throw new AppError('unauthorized', 'the admin API is disabled: set PAYCENTER_ADMIN_TOKEN to enable it');
    }
    const token = bearerToken(request);
    if (token === undefined || !constantTimeEqual(token, adminToken)) {
      throw new AppError('unauthorized', 'a valid admin token is required (Authorization: Bearer …)');
    }
  };
}
