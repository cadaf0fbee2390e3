/**
 * The component's entry module (what componentize-js builds): wires the host's imports into
 * the SDK and exports the `trust-policy` world's functions.
 * @module
 */

import { globMatch, log } from 'tollgate:policy/host@0.1.0';
import { exportPolicy, useHost } from '../../../sdk/js/src/index.js';
import { teamScopes } from './team-scopes.js';

useHost({ log, globMatch });

const policy = exportPolicy(teamScopes);

/** `evaluate` of the world. @param {any} request */
export function evaluate(request) {
  return policy.evaluate(request);
}

/** `validate-config` of the world. @param {string} config */
export function validateConfig(config) {
  return policy.validateConfig(config);
}
