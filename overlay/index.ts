/**
 * The lab's public API: an emulated datacenter on one machine (public hosts, NAT gateways of every kind,
 * functions behind them), used by `boxer lab`, the test suite and the benchmarks. See docs/lab.md.
 */

export { Lab } from './lab';
export type { ExecOptions, ExecResult, LabOptions, NodeInfo, NodeRole, SpawnOptions } from './lab';
export { labCommand } from './cli';
export { checkLabPrerequisites, FUNCTION_USER, readabilityProblem } from './sys';
export type { PrerequisiteResult } from './sys';
export type { GatewayKnobs, LabState } from './state';
export { DEFAULT_TOPOLOGY_FILE, loadTopologyFile, planTopology } from './topology-plan';
export {
  NAT_KINDS,
  predictPublicPort,
  TopologyError,
  TRANSLATE_SPACE,
  TRANSLATE_XOR,
} from './topology';
export type { FunctionSpec, GatewaySpec, HostSpec, NatKind, Plan, PortRange, Topology } from './topology';
