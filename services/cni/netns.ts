// What an interface inside a container's network namespace looks like now, for CHECK: iproute2's
// JSON output read through nsenter (Node has no netlink; iproute2 is what the reference plugins'
// hosts have anyway).
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface InterfaceState {
  exists: boolean;
  up: boolean;
  addresses: string[];
}

interface IpAddrJson {
  flags?: string[];
  operstate?: string;
  addr_info?: { local?: string; prefixlen?: number }[];
}

export async function interfaceState(netnsPath: string, ifname: string): Promise<InterfaceState> {
  try {
    const { stdout } = await run(
      "nsenter",
      [`--net=${netnsPath}`, "ip", "-j", "addr", "show", "dev", ifname],
      {
        timeout: 5000,
      },
    );
    const parsed = JSON.parse(stdout) as IpAddrJson[];
    const link = parsed[0];
    if (!link) return { exists: false, up: false, addresses: [] };
    return {
      exists: true,
      up: link.flags?.includes("UP") ?? false,
      addresses: (link.addr_info ?? []).flatMap((a) => (a.local ? [`${a.local}/${a.prefixlen}`] : [])),
    };
  } catch (err) {
    const text = String((err as { stderr?: unknown }).stderr ?? err);
    if (/does not exist|Cannot find device/.test(text)) return { exists: false, up: false, addresses: [] };
    throw err;
  }
}
