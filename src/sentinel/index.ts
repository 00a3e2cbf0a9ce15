/** The Sentinel-compatible endpoint a coordinator can serve (`--sentinel-port`). */
export * from './server.js';
export * from './sources.js';
