/**
 * The package's public API (`import … from 'switchyard'`): the daemons' entry points,
 * the pure core, the engine seam and its registry, the event and config schemas, and
 * the error catalogue. The client library is `switchyard/client`; the core alone is
 * `switchyard/core`.
 */

// the daemons
export { Agent } from '../agent/agent.js';
export { loadAgentConfig, runAgent } from '../agent/main.js';
export { loadCoordinatorConfig, runCoordinator, startCoordinator, type RunningCoordinator } from '../coordinator/main.js';

// the pure core: evolve, decide, the routing projection, the state machine
export * as core from './core/index.js';
export { evolve, fold } from './core/evolve.js';
export { decide, type Decision, type JobSpec } from './core/decide.js';
export { routingTable, type RoutingTable } from './core/routing.js';
export { initialState, type ClusterState } from './core/state.js';
export { DEFAULT_SETTINGS, withDefaults, type Settings } from './core/settings.js';

// engines
export { getEngine, engineNames, registerEngine, isEngineName } from './engines/index.js';
export type {
  Engine,
  EngineName,
  EngineAction,
  NodeProbe,
  Prober,
  PositionCodec,
  Position,
  NodeActions,
  ManagedNode,
  ManagedSpec,
  Connection,
  Upstream,
  SyncSpec,
  ActionResult,
  RejoinHow,
  StopMode,
} from './engines/types.js';
export { ENGINE_ACTIONS } from './engines/types.js';
export { postgresEngine } from './engines/postgres/index.js';

// events, config, errors
export * from './events/index.js';
export { AgentConfig, CoordinatorConfig, ClusterConfig, Settings as SettingsSchema } from './config/schemas.js';
export { ConfigError, validateConfig } from './config/load.js';
export { ERRORS, ERROR_CODES, JOB_CODES, JOB_CODE_LIST, SwitchyardError, StartupError, isErrorCode, isSwitchyardError, type ErrorCode, type JobCode } from './errors.js';
export { ERRORS as API_ERRORS, ApiError, type ErrorCode as ApiErrorCode } from './api/errors.js';
export { keys, jobIdFor, type ClusterKeys } from './bus/keys.js';
