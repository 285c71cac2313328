// IPAM over HTTP, for the CNI plugin and operators. An attachment is one container interface in one
// network; PUT is idempotent (a retried CNI ADD gets the address it got before), DELETE of an
// unknown attachment is a success with `released: false` (CNI DEL must be), GC releases the
// attachments of one node that its runtime no longer knows.
//   GET    /v1/ipam/networks/:network                              usage and leases
//   PUT    /v1/ipam/networks/:network/attachments/:container/:if   {workload?, node?, address?}
//   GET    /v1/ipam/networks/:network/attachments/:container/:if
//   DELETE /v1/ipam/networks/:network/attachments/:container/:if
//   POST   /v1/ipam/networks/:network/gc                           {node, keep: [{containerId, ifname}]}
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest, RawServerDefault } from "fastify";
import { CatenaError, ErrorCode, type ErrorDetail } from "../errors.js";
import { cniOwner, type Ipam } from "../ipam/index.js";

export interface IpamRouteDeps {
  ipam: Ipam;
}

/** CNI's rule for container ids (alphanumeric, `_`, `.`, `-`), and Linux's for interface names. */
const CONTAINER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IFNAME = /^[^\s/:]{1,15}$/;
const NODE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$/;

interface Attachment {
  network: string;
  containerId: string;
  ifname: string;
}

function attachment(request: FastifyRequest): Attachment {
  const { network, container, ifname } = request.params as Record<string, string>;
  const details: ErrorDetail[] = [];
  if (!CONTAINER_ID.test(container ?? ""))
    details.push({ path: "containerId", message: "must be letters, digits, '_', '.' or '-'" });
  if (!IFNAME.test(ifname ?? "") || ifname === "." || ifname === "..")
    details.push({
      path: "ifname",
      message: "must be an interface name (1 to 15 characters, no '/', ':' or space)",
    });
  if (details.length > 0) throw new CatenaError(ErrorCode.Invalid, "bad attachment", details);
  return { network: network as string, containerId: container as string, ifname: ifname as string };
}

function optionalString(
  body: Record<string, unknown>,
  field: string,
  pattern: RegExp,
  details: ErrorDetail[],
) {
  const v = body[field];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !pattern.test(v)) {
    details.push({ path: field, message: `must be a string matching ${pattern}` });
    return undefined;
  }
  return v;
}

function objectBody(request: FastifyRequest): Record<string, unknown> {
  const body = request.body ?? {};
  if (typeof body !== "object" || Array.isArray(body))
    throw new CatenaError(ErrorCode.Invalid, "the body must be a JSON object");
  return body as Record<string, unknown>;
}

export function registerIpamRoutes<L extends FastifyBaseLogger>(
  app: FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, L>,
  deps: IpamRouteDeps,
): void {
  const { ipam } = deps;
  const base = "/v1/ipam/networks/:network";
  const one = `${base}/attachments/:container/:ifname`;

  app.get(base, async (request) => {
    const { network } = request.params as { network: string };
    return { ...(await ipam.usage(network)), leases: await ipam.leases(network) };
  });

  app.put(one, async (request) => {
    const a = attachment(request);
    const body = objectBody(request);
    const details: ErrorDetail[] = [];
    const workload = optionalString(body, "workload", /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, details);
    const node = optionalString(body, "node", NODE, details);
    const address = optionalString(body, "address", /^[0-9A-Fa-f.:]+$/, details);
    if (details.length > 0) throw new CatenaError(ErrorCode.Invalid, "bad allocation request", details);
    return ipam.allocate(a.network, {
      owner: cniOwner(a.containerId, a.ifname),
      ...(workload !== undefined && { workload }),
      ...(node !== undefined && { node }),
      ...(address !== undefined && { address }),
    });
  });

  app.get(one, async (request) => {
    const a = attachment(request);
    const found = await ipam.lookup(a.network, cniOwner(a.containerId, a.ifname));
    if (!found)
      throw new CatenaError(
        ErrorCode.NotFound,
        `no address for ${a.containerId}/${a.ifname} in network ${a.network}`,
      );
    return found;
  });

  app.delete(one, async (request) => {
    const a = attachment(request);
    const lease = await ipam.release(a.network, cniOwner(a.containerId, a.ifname));
    return { released: lease !== undefined, ...(lease && { address: lease.address }) };
  });

  app.post(`${base}/gc`, async (request) => {
    const { network } = request.params as { network: string };
    const body = objectBody(request);
    const details: ErrorDetail[] = [];
    const node = optionalString(body, "node", NODE, details);
    if (node === undefined && details.length === 0) details.push({ path: "node", message: "required" });
    const keep = new Set<string>();
    if (!Array.isArray(body.keep)) details.push({ path: "keep", message: "must be a list" });
    else
      body.keep.forEach((k: unknown, i: number) => {
        const { containerId, ifname } = (k ?? {}) as { containerId?: unknown; ifname?: unknown };
        if (typeof containerId !== "string" || typeof ifname !== "string")
          details.push({ path: `keep[${i}]`, message: "needs containerId and ifname" });
        else keep.add(cniOwner(containerId, ifname));
      });
    if (details.length > 0) throw new CatenaError(ErrorCode.Invalid, "bad gc request", details);
    const released = await ipam.releaseWhere(
      network,
      (lease) => lease.owner.startsWith("cni/") && lease.node === node && !keep.has(lease.owner),
    );
    return { released };
  });
}
