// Moves bytes from one stream to another with back-pressure in both senses: the source is paused
// while the destination's buffer is full ('drain' resumes it) and while an optional throttle has no
// budget (a timer resumes it). At most one chunk is held back, so nothing buffers without bound.
import type { Readable, Writable } from "node:stream";

/** A byte budget (for example a token bucket). */
export interface Throttle {
  /** Takes up to `want` bytes of budget now and returns how many were granted (0 means wait). */
  grant(want: number): number;
  /** Milliseconds until some of `want` bytes could be granted. */
  waitMs(want: number): number;
  /** The pump is done with this throttle (it may have been waiting for a share). */
  release?(): void;
}

export interface PumpOptions {
  throttle?: Throttle;
  /** Propagate the source's end as destination.end() (a TCP half-close). Default true. */
  end?: boolean;
}

export class Pump {
  /** Bytes written to the destination. */
  bytes = 0;
  private pending: Buffer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private sourceEnded = false;
  private stopped = false;

  constructor(
    private readonly source: Readable,
    private readonly destination: Writable,
    private readonly options: PumpOptions = {},
  ) {
    source.on("data", this.onData);
    source.on("end", this.onEnd);
    destination.on("drain", this.onDrain);
    // Nothing more can be written once the destination is gone; the owner handles the why.
    destination.on("close", this.onDestinationClose);
    // The pump owns the flow from here, even if someone paused the source earlier (a header reader).
    source.resume();
    // A source that ended before the pump was attached (a client that sent its FIN while the upstream
    // was still connecting) emits no second 'end': pass the half-close on now.
    if (source.readableEnded) process.nextTick(this.onEnd);
  }

  /** Bytes held back by the throttle right now (at most one chunk). */
  get held(): number {
    return this.pending?.length ?? 0;
  }

  /** Detaches from both streams without ending or destroying them. Idempotent. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.options.throttle?.release?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
    this.source.off("data", this.onData);
    this.source.off("end", this.onEnd);
    this.destination.off("drain", this.onDrain);
    this.destination.off("close", this.onDestinationClose);
  }

  private readonly onDestinationClose = (): void => {
    this.stop();
  };

  private readonly onData = (chunk: Buffer): void => {
    if (this.stopped) return;
    // A chunk can still arrive in the tick we paused; keep it with the held one rather than drop it.
    if (this.pending) {
      this.pending = Buffer.concat([this.pending, chunk]);
      return;
    }
    this.send(chunk);
  };

  private send(chunk: Buffer): void {
    const t = this.options.throttle;
    const n = t ? t.grant(chunk.length) : chunk.length;
    if (n > 0) {
      this.bytes += n;
      if (!this.destination.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
        this.waitingDrain = true;
    }
    if (n < chunk.length) {
      this.pending = chunk.subarray(n);
      this.timer = setTimeout(
        this.onTimer,
        Math.max(1, Math.ceil((t as Throttle).waitMs(this.pending.length))),
      );
    }
    if (this.pending || this.waitingDrain) this.source.pause();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    const p = this.pending;
    if (this.stopped || !p) return;
    this.pending = undefined;
    if (this.destination.destroyed) return;
    this.send(p);
    this.maybeResume();
  };

  private readonly onDrain = (): void => {
    this.waitingDrain = false;
    this.maybeResume();
  };

  private readonly onEnd = (): void => {
    this.sourceEnded = true;
    this.maybeResume();
  };

  private maybeResume(): void {
    if (this.stopped || this.pending) return;
    if (this.sourceEnded) {
      // end() queues behind the writes already made, so there is no need to wait for drain.
      if (this.options.end !== false && !this.destination.writableEnded) this.destination.end();
      return;
    }
    if (!this.waitingDrain) this.source.resume();
  }
}
