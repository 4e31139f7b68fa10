/**
 * Every protocol timer and limit of Boxer, each with the reason for its value, one file per layer
 * (the model is wireguard-go's device/constants.go). Modules import what they use from here.
 */
export * from './wire';
export * from './control';
export * from './traversal';
export * from './vnet';
export * from './ipc';
export * from './lambda';
export * from './cli';
