/**
 * The seed's relearning after a restart. With recorded bindings (its state file, bindings.ts), for
 * SEED_RELEARN_MS the seed admits only rejoins (members prove their binding with their key) and holds new
 * joins; then it sends everyone the authoritative list and admits the held joins. Without recorded bindings (the
 * state file lost), for SEED_RELEARN_MS after it starts, rejoins may claim the ids they had where no other key
 * holds them.
 */
import type { Logger } from '../util/log';

export class Relearn {
  private until = 0;
  /** Until then, rejoins of keys without a binding may claim free ids (a seed that lost its state). */
  private claimsUntil = 0;
  private held: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;

  /**
   * `state`: what the state file held. `ended` runs when relearning ends, before the held joins are admitted;
   * `changed` after them.
   */
  constructor(
    state: 'none' | 'legacy' | 'bindings',
    relearnMs: number,
    log: Logger,
    private readonly hooks: { ended(): void; changed(): void },
    recorded: { maxId: number; bindings: number },
  ) {
    if (state !== 'none') {
      this.until = Date.now() + relearnMs;
      log.info('restarted: relearning the membership from the members', recorded);
      this.timer = setTimeout(() => this.end(), relearnMs);
    }
    if (state !== 'bindings') this.claimsUntil = Date.now() + relearnMs;
  }

  /** Whether the seed is still relearning (told to members in `welcome`). */
  get relearning(): boolean {
    return Date.now() < this.until;
  }

  /** Whether a rejoin may still claim an id no binding holds. */
  get claimsOpen(): boolean {
    return Date.now() < this.claimsUntil;
  }

  /** Admits a join now, or (a new join while relearning) once relearning ends; rejoins of known members go first. */
  admitOrHold(rejoin: boolean, admit: () => void): void {
    if (!rejoin && this.relearning) this.held.push(admit);
    else admit();
  }

  private end(): void {
    this.until = 0;
    // Members that died while the seed was down never came back: everyone gets the authoritative list.
    this.hooks.ended();
    for (const admit of this.held.splice(0)) admit();
    this.hooks.changed();
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
