// Time as an injectable function, so rate limiters and health state can be tested without sleeping.
/** Milliseconds from an arbitrary origin; must never go backwards. */
export type Clock = () => number;

export const monotonicClock: Clock = () => performance.now();
