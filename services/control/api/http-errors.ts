// The one place CatenaError codes become HTTP statuses, and the error body every endpoint uses.
import type { FastifyReply } from "fastify";
import { type CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";

const STATUS: Record<ErrorCode, number> = {
  [ErrorCode.Invalid]: 400,
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Closed]: 503,
  [ErrorCode.Internal]: 500,
};

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

/** `status` overrides the code's usual status (a 413 or 415 found by Fastify itself). */
export function sendError(reply: FastifyReply, err: CatenaError, status?: number): FastifyReply {
  const body: ErrorBody = { error: { code: err.code, message: err.message, details: err.details } };
  return reply.code(status ?? STATUS[err.code]).send(body);
}
