// The local runtime (`catena up`): supervises function instances as child processes.
export { type AddressPool, LoopbackAddressPool, type LoopbackAddressPoolOptions } from "./address-pool.js";
export { type DemoBackend, type DemoBackends, startDemoBackends } from "./demo-backends.js";
export { RUNTIME_ERROR, RuntimeError, type RuntimeErrorCode } from "./errors.js";
export type { FunctionSpec, Withdrawal } from "./function-pool.js";
export type { InstanceEventVerb, InstanceInfo, InstanceState, LogSink } from "./instance-process.js";
export { IpamAddressPool, type IpamAddressPoolOptions } from "./ipam-address-pool.js";
export {
  type CommandLauncherOptions,
  commandLauncher,
  functionArgs,
  type InstanceSpec,
  type Launcher,
  selfCommand,
} from "./launcher.js";
export { type LogFormat, LogMux, type LogMuxOptions } from "./log-mux.js";
export {
  defaultRuntimeOptions,
  followStore,
  functionSpec,
  Runtime,
  type RuntimeInit,
  type RuntimeOptions,
  startRuntime,
} from "./runtime.js";
export { type XdsWithdrawalOptions, xdsWithdrawal } from "./xds-withdrawal.js";
