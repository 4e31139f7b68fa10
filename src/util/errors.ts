/**
 * Errors a person can act on. Each carries a code that the CLI maps to a distinct exit status (listed in
 * `boxer --help` and docs/cli.md) and a message that says what happened and what to do.
 */

export const EXIT = {
  OK: 0,
  /** Bad command line or configuration (missing secret, bad CIDR, bad name). */
  USAGE: 64,
  /** The seed could not be reached (nothing listening, DNS failure, timeout). */
  SEED_UNREACHABLE: 69,
  /** Internal error: a bug; the message says where. */
  INTERNAL: 70,
  /** The name asked for is taken by another member or service. */
  NAME_TAKEN: 73,
  /** The seed's virtual network has no free address left. */
  NETWORK_FULL: 74,
  /** This member of a `boxer lambda run` (run id + index) has joined already: a duplicate invocation. */
  DUPLICATE: 76,
  /** The peer does not know our network secret (or we do not know its). */
  WRONG_SECRET: 77,
  /** No local agent could be found or reached (boxer status / ping). */
  NO_AGENT: 78,
  /** The member asked for (boxer ping) could not be reached. */
  UNREACHABLE: 79,
  /** The lab (emulated NATs) cannot be built here: not root, tool missing. */
  LAB_UNAVAILABLE: 80,
  /** An AWS call failed (no credentials or region, an error from the service): the message says which and why. */
  AWS: 81,
  /** AWS denied a call: the message lists the IAM permissions the command needs. */
  AWS_DENIED: 82,
  /** `boxer lambda run`: a member failed (its command exited non-zero, was cut by its deadline, died, or never joined). */
  MEMBERS_FAILED: 83,
} as const;

export type ErrorCode = keyof typeof EXIT;

export class BoxerError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'BoxerError';
  }
  get exitCode(): number {
    return EXIT[this.code];
  }
}

/** Protocol-level refusals sent on the wire (in `error` messages) and what they map to locally. */
export const WIRE_ERRORS = {
  'name-taken': 'NAME_TAKEN',
  'network-full': 'NETWORK_FULL',
  'bad-request': 'USAGE',
  'wrong-secret': 'WRONG_SECRET',
  'version': 'USAGE',
  'duplicate': 'DUPLICATE',
} as const satisfies Record<string, ErrorCode>;
export type WireErrorCode = keyof typeof WIRE_ERRORS;
