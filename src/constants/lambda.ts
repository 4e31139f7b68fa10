/**
 * Timers and limits of AWS Lambda: deploy/run and the handler inside the function (src/lambda), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

// ---- AWS: boxer lambda deploy/run/destroy (src/lambda/aws.ts, docs/lambda.md) -------------------------------
/** Attempts per AWS call (the SDK's standard retry mode: throttling and 5xx back off and retry). */
export const AWS_MAX_ATTEMPTS = 5;
/** Lambda's runtime: Node.js 22 on Amazon Linux 2023 (nodejs20.x can no longer be created). */
export const LAMBDA_RUNTIME = 'nodejs22.x';
/** The handler at the package's root (src/lambda/handler.ts compiled to index.js). */
export const LAMBDA_HANDLER = 'index.handler';
/** Default memory: 1,769 MB is where Lambda gives a function one whole vCPU (the agent and the program share it). */
export const LAMBDA_DEFAULT_MEMORY_MB = 1769;
/** Default timeout: Lambda's maximum, 15 minutes; a member leaves `leaveBeforeMs` before it. */
export const LAMBDA_DEFAULT_TIMEOUT_S = 900;
/** Default /tmp size: Lambda's free 512 MB. */
export const LAMBDA_DEFAULT_EPHEMERAL_MB = 512;
/**
 * An asynchronous event Lambda could not start at once (throttled) is dropped after this long: a member that
 * starts minutes after the others would join a network whose run is over. 300 s covers a burst of cold starts
 * and throttling retries; the API's range is 60 s to 6 h.
 */
export const LAMBDA_MAX_EVENT_AGE_S = 300;
/** Largest zip the API takes inline (CreateFunction / UpdateFunctionCode ZipFile); larger needs S3. */
export const LAMBDA_MAX_ZIP_BYTES = 50 * 1024 * 1024;
/** Largest payload of an asynchronous (Event) invocation: 256 KB (the limit AWS documents for Event invokes). */
export const LAMBDA_MAX_ASYNC_PAYLOAD = 256 * 1024;
/** `deploy` waits at most this long for a new or updated function to become Active / Successful. */
export const LAMBDA_WAIT_READY_S = 300;
/** A freshly made role may not be assumable by Lambda for a few seconds (IAM propagation): CreateFunction retries this often... */
export const LAMBDA_ROLE_RETRY_MS = 3_000;
/** ...and at most this many times (about 30 s, the propagation delay AWS documents as typical). */
export const LAMBDA_ROLE_RETRIES = 10;
/** `boxer lambda run` keeps at most this many Invoke calls in flight (each returns in tens of ms: 20 members start within a second). */
export const LAMBDA_INVOKE_CONCURRENCY = 16;
/**
 * Default of `boxer lambda run --join-timeout`: a cold start of the package (about 1 s), Lambda's own queueing
 * of asynchronous events (seconds, more when throttled) and the join itself, with a wide margin.
 */
export const LAMBDA_RUN_JOIN_TIMEOUT_S = 120;

// ---- inside the function: the handler (src/lambda/handler.ts, docs/lambda.md#handler) -----------------------
/**
 * Default of the event's `leaveBeforeMs`: the command is stopped and the member leaves this long before the
 * function's deadline. It must cover SIGTERM's grace (STOP_GRACE_MS), the leave (LEAVE_TIMEOUT_MS) and the
 * return, with room for a slow program's shutdown.
 */
export const LAMBDA_LEAVE_BEFORE_MS = 20_000;
/** Least time the handler needs left, after leaveBeforeMs is set aside, to join at all; less is refused. */
export const LAMBDA_MIN_RUN_MS = 1_000;
/** Bound on reading the network secret from Secrets Manager or SSM (the SDK retries within it). */
export const LAMBDA_SECRET_FETCH_TIMEOUT_MS = 10_000;
/** An observer of the seed (`boxer lambda run`) pings it this often: the keepalive of its connection, as HEARTBEAT_INTERVAL_MS. */
export const WATCH_PING_MS = 5_000;
