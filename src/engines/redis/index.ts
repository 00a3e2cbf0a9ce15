/** The Redis engine: probe, process control, actions and its pure rules. */
export * from './resp.js';
export * from './conn.js';
export * from './info.js';
export * from './probe.js';
export * from './process.js';
export * from './actions.js';
export * from './restart.js';
export * from './candidate.js';
export * from './engine.js';
