export * from './settings.js';
export * from './lsn.js';
export * from './state.js';
export * from './evolve.js';
export * from './decide.js';
export * from './routing.js';
export * from './snapshot.js';
